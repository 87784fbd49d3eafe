package workload

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// The fast path: the single-statement operations the workers run most
// (register write, cas and read, set add) as one Bind, Execute and Sync
// written straight to the connection's socket, and the answer read up to
// ReadyForQuery, with no driver layer between. pgx's Exec costs about a
// fifth of a write's client CPU on top of the socket's own (`make bench`),
// CPU the PostgreSQL servers on the same cores then lack. The connection
// stays pgx's: pgconn's SyncConn makes sure nothing of it is buffered or
// being read before the fast path writes, and the fast path reads exactly
// up to ReadyForQuery, so pgx finds the connection as it left it.
//
// It serves only operations bounded by Conn.Within (a context that never
// ends): an operation whose context can expire goes through pgx, which
// watches it (execStmt chooses).

// fastStmt is a statement of the fast path, prepared on a connection
// under its name the first time it runs there (sql is also what pgx runs
// when the fast path does not serve).
type fastStmt struct{ name, sql string }

var (
	fastRegisterWrite = &fastStmt{"sc_register_write", RegisterWriteSQL}
	fastRegisterCAS   = &fastStmt{"sc_register_cas", registerCASSQL}
	fastRegisterRead  = &fastStmt{"sc_register_read", registerReadSQL}
	fastSetAdd        = &fastStmt{"sc_set_add", setAddSQL}
)

// fastResult is what a fast statement returned: the rows its command tag
// counts, and the first column of its first row when it returned one.
type fastResult struct {
	rows   int64
	val    int64
	hasVal bool
}

// errFastProtocol is a message the fast path did not expect: the
// connection is dropped, and the operation's outcome is unknown.
var errFastProtocol = errors.New("workload: unexpected message from the server")

// execStmt runs st with integer arguments as one autocommit statement, on
// the fast path when c is a ConnectClient connection and ctx never ends
// (an operation inside Within), else through pgx, which watches ctx. It
// returns the rows the command tag counts and the first column of the
// first row, when there is one.
func (c *Conn) execStmt(ctx context.Context, st *fastStmt, args ...int64) (fastResult, error) {
	if c.prepared != nil && ctx.Done() == nil {
		return c.execFast(st, args...)
	}
	anys := make([]any, len(args))
	for i, a := range args {
		anys[i] = a
	}
	rows, err := c.pg.Query(ctx, st.sql, anys...)
	if err != nil {
		return fastResult{}, err
	}
	defer rows.Close()
	var res fastResult
	for rows.Next() {
		if !res.hasVal {
			if err := rows.Scan(&res.val); err != nil {
				return fastResult{}, err
			}
			res.hasVal = true
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fastResult{}, err
	}
	res.rows = rows.CommandTag().RowsAffected()
	return res, nil
}

// execFast runs st with integer arguments, as text, as one autocommit
// statement. Errors are those the rest of the package classifies: a
// *pgconn.PgError from the server (after its ReadyForQuery), ErrNotSent
// when nothing was written, or the socket's own error, after which the
// connection is dropped (IsClosed reports true).
func (c *Conn) execFast(st *fastStmt, args ...int64) (fastResult, error) {
	if c.expired.Load() {
		return fastResult{}, fmt.Errorf("%w: the operation's timeout passed before it was sent", ErrNotSent)
	}
	pc := c.pg.PgConn()
	if !c.prepared[st] {
		if _, err := pc.Prepare(context.Background(), st.name, st.sql, nil); err != nil {
			return fastResult{}, err
		}
		c.prepared[st] = true
	}
	if err := pc.SyncConn(context.Background()); err != nil {
		return fastResult{}, err
	}
	c.wbuf = appendBind(c.wbuf[:0], st.name, args)
	nc := pc.Conn()
	if n, err := nc.Write(c.wbuf); err != nil {
		c.drop()
		if n == 0 {
			return fastResult{}, fmt.Errorf("%w: %w", ErrNotSent, err)
		}
		return fastResult{}, err
	}
	return c.readFast()
}

// appendBind appends Bind (unnamed portal, statement name, text
// parameters, text results), Execute (every row) and Sync.
func appendBind(b []byte, name string, args []int64) []byte {
	start := len(b)
	b = append(b, 'B', 0, 0, 0, 0, 0) // type, length (set below), portal ""
	b = append(b, name...)
	b = append(b, 0, 0, 0) // name's end, no parameter format codes (text)
	b = binary.BigEndian.AppendUint16(b, uint16(len(args)))
	for _, a := range args {
		at := len(b)
		b = append(b, 0, 0, 0, 0)
		b = strconv.AppendInt(b, a, 10)
		binary.BigEndian.PutUint32(b[at:], uint32(len(b)-at-4))
	}
	b = append(b, 0, 0) // no result format codes (text)
	binary.BigEndian.PutUint32(b[start+1:], uint32(len(b)-start-1))
	b = append(b, 'E', 0, 0, 0, 9, 0, 0, 0, 0, 0) // unnamed portal, no row limit
	return append(b, 'S', 0, 0, 0, 4)
}

// maxFastMessage bounds a message of the answer (the largest is an error
// with its detail): past it the connection is dropped.
const maxFastMessage = 1 << 20

// readFast reads the answer to one Bind, Execute, Sync up to its
// ReadyForQuery. An ErrorResponse becomes the returned error; notices go
// to the connection's notice handler (onNotice); parameter changes and
// notifications are ignored. A connection that fails, ends, says something
// else, or sends more after ReadyForQuery is dropped.
func (c *Conn) readFast() (fastResult, error) {
	var res fastResult
	var srvErr error
	nc := c.pg.PgConn().Conn()
	buf, have, off := c.rbuf, 0, 0
	for {
		for have-off >= 5 {
			size := int(binary.BigEndian.Uint32(buf[off+1:])) + 1
			if size < 5 || size > maxFastMessage {
				c.drop()
				return res, fmt.Errorf("%w: a message of %d bytes", errFastProtocol, size)
			}
			if have-off < size {
				break
			}
			typ, body := buf[off], buf[off+5:off+size]
			off += size
			if typ == 'Z' {
				if off < have {
					c.drop() // something unasked for came after it
				}
				return res, srvErr
			}
			if err := c.fastMessage(typ, body, &res, &srvErr); err != nil {
				c.drop()
				return res, err
			}
		}
		// Room for the rest: the partial message to the front, and a
		// larger buffer when it fills this one.
		have = copy(buf, buf[off:have])
		off = 0
		if have == len(buf) {
			buf = append(buf, make([]byte, len(buf))...)
			c.rbuf = buf
		}
		n, err := nc.Read(buf[have:])
		have += n
		if err != nil {
			c.drop()
			if srvErr != nil {
				return res, srvErr // a FATAL error, then the end of the connection
			}
			return res, err
		}
	}
}

// fastMessage takes one message of the answer into res or srvErr.
func (c *Conn) fastMessage(typ byte, body []byte, res *fastResult, srvErr *error) error {
	switch typ {
	case '2', 'I', 'S', 'A': // BindComplete, EmptyQueryResponse, ParameterStatus, NotificationResponse
	case 'C':
		tag := pgconn.NewCommandTag(string(body[:max(0, len(body)-1)]))
		res.rows = tag.RowsAffected()
	case 'D':
		if res.hasVal || len(body) < 6 || binary.BigEndian.Uint16(body) < 1 {
			return nil
		}
		n := int32(binary.BigEndian.Uint32(body[2:6]))
		if n < 0 || int(n) > len(body)-6 {
			return nil // NULL
		}
		v, err := strconv.ParseInt(string(body[6:6+n]), 10, 64)
		if err != nil {
			return fmt.Errorf("%w: row %q: %w", errFastProtocol, body[6:6+n], err)
		}
		res.val, res.hasVal = v, true
	case 'E':
		var m pgproto3.ErrorResponse
		if err := m.Decode(body); err != nil {
			return fmt.Errorf("%w: %w", errFastProtocol, err)
		}
		*srvErr = pgconn.ErrorResponseToPgError(&m)
	case 'N':
		var m pgproto3.ErrorResponse
		if err := m.Decode(body); err != nil {
			return fmt.Errorf("%w: %w", errFastProtocol, err)
		}
		c.onNotice(c.pg.PgConn(), (*pgconn.Notice)(pgconn.ErrorResponseToPgError(&m)))
	default:
		return fmt.Errorf("%w: type %q", errFastProtocol, typ)
	}
	return nil
}

// drop closes the socket after the fast path lost track of the protocol
// or the connection failed: IsClosed reports true from now on, and Close
// closes what pgx still holds.
func (c *Conn) drop() {
	c.dropped = true
	_ = c.pg.PgConn().Conn().Close()
}
