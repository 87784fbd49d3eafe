package workload

import (
	"encoding/binary"
	"testing"

	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// appendBind writes exactly the Bind, Execute and Sync that pgproto3
// decodes back: the statement's name, text parameters, text results, the
// unnamed portal and no row limit.
func TestAppendBind(t *testing.T) {
	b := appendBind([]byte("junk"), "sc_register_cas", []int64{3, -7, 1_000_000_007})
	require.Equal(t, "junk", string(b[:4]), "appends, keeps what was there")
	b = b[4:]
	next := func(typ byte) []byte {
		t.Helper()
		require.GreaterOrEqual(t, len(b), 5)
		require.Equal(t, string(typ), string(b[0]))
		n := int(binary.BigEndian.Uint32(b[1:5])) + 1
		require.LessOrEqual(t, n, len(b))
		body := b[5:n]
		b = b[n:]
		return body
	}
	var bind pgproto3.Bind
	require.NoError(t, bind.Decode(next('B')))
	assert.Equal(t, "", bind.DestinationPortal)
	assert.Equal(t, "sc_register_cas", bind.PreparedStatement)
	assert.Empty(t, bind.ParameterFormatCodes)
	assert.Equal(t, [][]byte{[]byte("3"), []byte("-7"), []byte("1000000007")}, bind.Parameters)
	assert.Empty(t, bind.ResultFormatCodes)
	var exec pgproto3.Execute
	require.NoError(t, exec.Decode(next('E')))
	assert.Equal(t, pgproto3.Execute{}, exec)
	assert.Empty(t, next('S'))
	assert.Empty(t, b)
}
