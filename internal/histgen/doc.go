// Package histgen makes up histories for tests and benchmarks of the
// checkers: register histories that are linearizable by construction
// (Register) and list-append histories that are strict serializable by
// construction, or only serializable where asked (Txns, ListAppend), all
// driven by a seed so that a seed always gives the same history. Layout
// turns hand-written transactions into a history. Only tests and
// benchmarks import it; it lives under internal so that no production
// package exports it.
package histgen
