package jepsen

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestEDNRoundTrip(t *testing.T) {
	for in, want := range map[string]string{
		`nil`:                     `nil`,
		`true`:                    `true`,
		`-42`:                     `-42`,
		`+7`:                      `7`,
		`12345678901N`:            `12345678901`,
		`1.5`:                     `1.5`,
		`2.0M`:                    `2.0`,
		`"a \"q\" \\ \n\t\u00e9"`: `"a \"q\" \\ \n\té"`,
		`:ok`:                     `:ok`,
		`:jepsen.history/op`:      `:jepsen.history/op`,
		`sym`:                     `sym`,
		`\a`:                      `\a`,
		`\newline`:                `\newline`,
		`[1 2,3]`:                 `[1 2 3]`,
		`(1 (2))`:                 `(1 (2))`,
		`{:a 1, :b [2 3]}`:        `{:a 1, :b [2 3]}`,
		`#{1 2}`:                  `#{1 2}`,
		`#inst "2020-01-01"`:      `#inst "2020-01-01"`,
		`[1 #_ 2 3]`:              `[1 3]`,
		"[1 ; a comment\n 2]":     `[1 2]`,
		`{:value [[:append 1 2] [:r 1 [2]] [:r 3 nil]]}`: `{:value [[:append 1 2] [:r 1 [2]] [:r 3 nil]]}`,
	} {
		v, err := ParseString(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, v.String(), in)
		back, err := ParseString(v.String())
		require.NoError(t, err, "%s printed as %s", in, v)
		assert.Equal(t, v.String(), back.String())
	}
}

func TestEDNErrors(t *testing.T) {
	for _, in := range []string{`[1 2`, `{:a}`, `]`, `"open`, `#`, `:`, `1 2`, `1.2.3x`, `"\uzzzz"`} {
		_, err := ParseString(in)
		assert.True(t, errors.Is(err, ErrSyntax), "%q: %v", in, err)
	}
}

func TestValueAccessors(t *testing.T) {
	v, err := ParseString(`{:type :ok, :process 3, :value [1 2]}`)
	require.NoError(t, err)
	assert.True(t, v.Get("type").IsKW("ok"))
	assert.Equal(t, int64(3), v.Get("process").Int)
	assert.True(t, v.Get("missing").IsNil())
	assert.True(t, v.Get("value").Seq())
	assert.True(t, I(1).Get("x").IsNil(), "Get on a non-map")
}
