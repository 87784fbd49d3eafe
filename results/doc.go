// Package results owns what a run leaves behind: the history format (one JSON
// line per operation, streamed to disk as it happens), the store layout
// (store/<test>/<time>/ with a latest link), and the report files.
//
// The history is the one record of a run: everything a checker needs is in
// it, so `strongcheck check DIR` can judge a run long after it ended, also one
// that was killed mid-way (the reader tolerates a torn last line).
package results
