package report

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/strongcheck/strongcheck/results"
)

func TestManagerSteps(t *testing.T) {
	op := func(f, phase string) nemesisStep {
		return nemesisStep{Op: results.Op{F: f, Fault: &results.Fault{Kind: f, Phase: phase}}}
	}
	steps := []nemesisStep{op("kill-primary", results.PhaseStart), op("manager", results.PhaseInfo),
		op("failover", results.PhaseStep), op("health", results.PhaseInfo), op("restart-old-primary", results.PhaseStop)}
	got := managerSteps(steps)
	var fs []string
	for _, s := range got {
		fs = append(fs, s.Op.F)
	}
	assert.Equal(t, []string{"kill-primary", "manager", "failover", "restart-old-primary"}, fs)
	assert.Nil(t, managerSteps(steps[:1]), "no manager observed: no section")
}
