package report

import "testing"

// skipUnderRace skips a test that builds a 300k-operation history when the
// race detector is on; `make test-integration` runs it without.
func skipUnderRace(t *testing.T) {
	t.Helper()
	if raceDetector {
		t.Skip("300k operations under -race take minutes; make test-integration runs this without -race")
	}
}
