// Package workload holds the operations strongcheck drives against the
// cluster: generators that draw the next operation from a seeded source and
// clients that perform it on one connection and say how it ended.
//
// There are four workloads, chosen by name with New:
//
//   - register: a few keys (rows k0, k1, ...), each read, written with a
//     value unique within the run, or compare-and-set. Writes and cas are
//     single autocommit statements: one round trip each, the same statement
//     PgbenchWriteScript gives pgbench.
//   - set: the RPO ledger. Unique elements are inserted on the primary; a
//     read covers a window of elements and names those missing from it
//     (Final reads the whole set).
//   - bank: transfers between accounts in one REPEATABLE READ transaction
//     that also logs the transfer id, and reads of every balance in one
//     snapshot. The total never changes.
//   - append: Jepsen's list-append transactions at a chosen isolation
//     level (append.go).
//
// A workload does not decide validity; it records what the client was told.
// Classify is the one place that turns what PostgreSQL and pgx return into
// ok, fail or info: fail only where the operation certainly did not happen,
// info wherever it may have (anything that touches a commit).
//
// # Use from the harness
//
// Each worker owns one Conn (ConnectClient) and one *rand.Rand derived from
// the run seed. It calls Next to draw an invoke, records it, routes it
// (write=true: the current primary; otherwise where --read-from says),
// calls Do inside Conn.Within, which bounds the operation as an expiring
// context would without pgx watching a context per statement, and records
// the completion Do returns, filling in Process, Node, Time and Latency.
// Inside Within the register's statements and the set's add take the fast
// path (fastpath.go): the protocol's three messages straight to the socket,
// without pgx's Exec, on the connection pgx keeps. After an info completion the worker
// reconnects under a new process id; after any completion with
// Conn.IsClosed() it must reconnect (a fail keeps its process id).
//
// Three ways to connect, which differ only in what an expired context does:
//   - Connect: closes the connection, sends no cancel request; a commit
//     waiting for synchronous replication keeps waiting on the server
//     (info for the client).
//   - ConnectWith(ConnOptions{CancelOnTimeout: true}): pgx's behaviour,
//     closes the connection and sends a cancel request in the background;
//     the commit becomes local-only and visible (info for the client).
//   - ConnectClient (the harness's workers): sends a cancel request and
//     waits up to CancelGrace for the answer, as an application's statement
//     timeout does; a commit in the sync wait then returns success with
//     Warning "canceling wait for synchronous replication ...": ok, kept
//     with its warning, for the RPO check to judge. Within does the same
//     when its timeout passes, and sends no statement after it.
package workload
