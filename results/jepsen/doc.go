// Package jepsen reads and writes histories in Jepsen's formats, so that
// strongcheck's verdicts can be cross-checked against Jepsen's own
// checkers (Knossos, Elle) and Jepsen's histories judged by strongcheck's.
//
// It holds a small EDN reader and writer of its own (Value, Reader: nil,
// booleans, integers, floats, strings, characters, keywords, symbols,
// vectors, lists, maps, sets, tagged values, #_ discards and comments),
// WriteHistory, which writes a strongcheck history as Jepsen's
// history.edn (register operations as Knossos reads them, list-append
// transactions as Elle reads them), and Read, which reads a Jepsen history
// (EDN, or the jepsen.util log lines of older tests such as porcupine's
// test data) as a strongcheck history of the register or the list-append
// model.
package jepsen
