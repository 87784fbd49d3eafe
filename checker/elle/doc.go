// Package elle checks list-append histories the way Jepsen's Elle does
// (Kingsbury and Alvaro, "Elle: Inferring Isolation Anomalies from
// Experimental Observations", VLDB 2020), in Go and without touching the
// cluster or the disk.
//
// Each transaction is a list of micro-operations: append(key, element) with
// elements unique per key, and read(key) returning the whole list. Because
// a list shows the order of the appends it holds, every read reveals a
// prefix of the key's version order. Check takes the longest list read of
// each key as its order (every other read must be a prefix of it), finds
// the writer of every element, and builds the dependency graph:
//
//   - ww: T1 appended an element and T2 the next one of the same key;
//   - wr: T2 read a list whose last element T1 appended;
//   - rw: T1 read a list that T2's append would have extended next;
//   - realtime: T1 completed before T2 began (a transitive reduction);
//   - process: one client ran T1 and then T2.
//
// It finds the strongly connected components of that graph (Tarjan's
// algorithm on an explicit stack) and, in each, the shortest cycle of each
// class by a breadth-first search over the graph and the relations taken
// so far: G0 (ww only), G1c (ww and wr), G-single (one rw), G-nonadjacent
// (several rw, none adjacent), G2-item (adjacent rw), and their -process
// and -realtime variants. Read anomalies need no cycle: internal
// inconsistency, duplicate elements, incompatible orders, elements nobody
// appended, aborted reads (G1a), intermediate reads (G1b), and appends
// acknowledged but missing from the final read of the final primary.
//
// Transactions that failed did not happen (a read of their elements is
// G1a); info transactions may have: their appends count where a read shows
// them, their reads are unknown.
//
// The Result names each anomaly with its count, a sentence on what it
// means, its cases in words with the transactions, their nodes and the
// nodes' roles at that moment, and the cycle's steps for a drawing; it says
// which consistency models (Models) the history satisfies and which
// anomalies rule the others out, and judges one model (Options.Model) as
// valid, invalid or unknown. A time or memory budget that runs out ends in
// unknown unless a forbidden anomaly was already found.
//
//	res := elle.Check(ctx, history.Ops, elle.Options{Model: "serializable", Timeout: time.Minute})
//	fmt.Println(res.Verdict, res.Summary)
package elle
