package checker

import (
	"fmt"
	"math"
	"strings"

	"github.com/strongcheck/strongcheck/cluster/syncnames"
	"github.com/strongcheck/strongcheck/results"
)

// The PostgreSQL documentation each verdict on "documented" cites (the
// version the harness tests; the passages are unchanged in later ones).
const (
	// "The data on the standby takes some time to arrive from the primary
	// server ... We say that data on the standby is eventually consistent
	// with the primary. Once the commit record for a transaction is
	// replayed on the standby, the changes made by that transaction will be
	// visible to any new snapshots taken on the standby."
	docHotStandby = "https://www.postgresql.org/docs/15/hot-standby.html#HOT-STANDBY-USERS"
	// synchronous_commit: on waits for the standbys to flush the commit's
	// WAL, remote_write to write it, remote_apply to replay it; local and
	// off do not wait for standbys.
	docSyncCommit = "https://www.postgresql.org/docs/15/runtime-config-wal.html#GUC-SYNCHRONOUS-COMMIT"
	// "If primary restarts while commits are waiting for acknowledgment,
	// those waiting transactions will be marked fully committed once the
	// primary database recovers ... Some transactions may not show as
	// committed on the standby, even though they show as committed on the
	// primary. The guarantee we offer is that the application will not
	// receive explicit acknowledgment of the successful commit of a
	// transaction until the WAL data is known to be safely received by all
	// the synchronous standbys." A cancelled wait is acknowledged with the
	// WARNING "canceling wait for synchronous replication ... might not
	// have been replicated to the standby".
	docSyncRepHA = "https://www.postgresql.org/docs/15/warm-standby.html#SYNCHRONOUS-REPLICATION-HA"
	// ANY num_sync / FIRST num_sync: a commit waits for num_sync of the
	// listed standbys; the others may lack it.
	docSyncNames = "https://www.postgresql.org/docs/15/runtime-config-replication.html#GUC-SYNCHRONOUS-STANDBY-NAMES"
	// Asynchronous replication: "if the primary server crashes then some
	// transactions that were committed may not have been replicated to the
	// standby server, causing data loss".
	docAsync = "https://www.postgresql.org/docs/15/warm-standby.html#STREAMING-REPLICATION"
)

// docVerdict says whether PostgreSQL documents one instance of an anomaly
// for the run's configuration, why, and where.
type docVerdict struct {
	documented bool
	why, url   string
}

func documented(why, url string) docVerdict   { return docVerdict{true, why, url} }
func undocumented(why, url string) docVerdict { return docVerdict{false, why, url} }

// docContext is what the documentation rules need to know of a run: its
// effective settings and what its nemesis did.
type docContext struct {
	syncCommit string
	sync       syncnames.Names
	// allApply: with remote_apply, every eligible standby must replay a
	// commit before it is acknowledged.
	allApply bool
	eligible []string
	// lossy says why an acknowledged commit may exist on the primary only
	// ("" when the configuration waits for every one of them).
	lossy string
	// forced are the completion times of promotions of a standby not known
	// to hold every acknowledged commit.
	forced []int64
	// cancels are the spans of steps that cancelled commits waiting for a
	// standby, or crashed the primary while they waited.
	cancels [][2]int64
	rt      *roleTimeline
}

func newDocContext(h *history, rt *roleTimeline, settings map[string]string) *docContext {
	d := &docContext{rt: rt, syncCommit: strings.ToLower(strings.TrimSpace(settings["synchronous_commit"]))}
	if d.syncCommit == "" {
		d.syncCommit = "on"
	}
	var standbys []string
	for _, n := range h.nodeNames() {
		if n != rt.initial {
			standbys = append(standbys, n)
		}
	}
	if v, ok := settings["synchronous_standby_names"]; ok {
		if s, err := syncnames.Parse(v); err == nil {
			d.sync = s
		}
	} else if len(standbys) > 0 {
		// The harness's default: every standby synchronous.
		d.sync = syncnames.Names{Method: syncnames.Any, Num: len(standbys), Names: standbys}
	}
	d.eligible = d.sync.EligibleAmong(standbys)
	d.allApply = d.syncCommit == "remote_apply" && !d.sync.Async() && d.sync.Num >= len(d.eligible)
	_, hasSync := settings["synchronous_standby_names"]
	switch {
	case hasSync && d.sync.Async():
		d.lossy = "replication is asynchronous (synchronous_standby_names is empty)"
	case d.syncCommit == "local" || d.syncCommit == "off":
		d.lossy = fmt.Sprintf("synchronous_commit=%s acknowledges a commit before any standby has it", d.syncCommit)
	}
	for st := range h.nemesisSteps() {
		op := h.stepOp(st)
		if op.Fault != nil && op.Fault.Forced && op.Type == results.OK {
			d.forced = append(d.forced, op.Time)
		}
		switch h.special[st.inv].F {
		case "cancel-sync-wait", "crash-primary":
			d.cancels = append(d.cancels, [2]int64{st.invT, h.stepEnd(st)})
		}
	}
	return d
}

// forcedAfter reports a forced promotion after t.
func (d *docContext) forcedAfter(t int64) bool {
	for _, f := range d.forced {
		if f >= t {
			return true
		}
	}
	return false
}

// cancelledDuring reports a cancel or crash step overlapping [a, b] (b < 0:
// the write never completed).
func (d *docContext) cancelledDuring(a, b int64) bool {
	for _, s := range d.cancels {
		if a <= s[1] && (b < 0 || b >= s[0]) {
			return true
		}
	}
	return false
}

func (d *docContext) settingsPhrase() string {
	return fmt.Sprintf("synchronous_commit=%s and synchronous_standby_names=%q", d.syncCommit, d.sync.String())
}

// losable says whether an acknowledged write done over [a, b] may be
// missing after a failover, and why; warned/cancelled say the write's
// wait for the standbys was cancelled.
func (d *docContext) losable(a, b int64, cancelled bool) (docVerdict, bool) {
	switch {
	case d.lossy != "":
		return documented(d.lossy+", so a failover can lose commits only the old primary had", docAsync), true
	case d.forcedAfter(a):
		return documented("the failover policy promoted a standby not known to hold every acknowledged commit", docSyncNames), true
	case cancelled:
		return documented("the write's wait for the standbys was cancelled: PostgreSQL makes such a commit visible on the primary and warns that it might not have been replicated", docSyncRepHA), true
	case d.cancelledDuring(a, b):
		return documented("commits waiting for a standby were cancelled or the primary crashed while they waited: PostgreSQL documents that they then show as committed on the primary but may not on the standbys", docSyncRepHA), true
	}
	return docVerdict{}, false
}

// lostWrite judges a lost acknowledged write done over [a, b].
func (d *docContext) lostWrite(a, b int64, warned bool) docVerdict {
	if warned {
		return documented("the write was acknowledged with the sync-wait warning, which says the commit might not have been replicated to the standby", docSyncRepHA)
	}
	if v, ok := d.losable(a, b, false); ok {
		return v
	}
	return undocumented(fmt.Sprintf("with %s every acknowledged commit is on the synchronous standbys, and no promotion of one not known to hold them all was recorded: PostgreSQL guarantees the application no acknowledgement before the standbys have the commit", d.settingsPhrase()), docSyncRepHA)
}

// vanished judges a read of a value (written over [a, b]) that the cluster
// later lost.
func (d *docContext) vanished(a, b int64, cancelled bool) docVerdict {
	if v, ok := d.losable(a, b, cancelled); ok {
		return v
	}
	return undocumented(fmt.Sprintf("with %s a commit becomes visible on the primary only once the synchronous standbys have it, and no failover to one not known to hold it was recorded", d.settingsPhrase()), docSyncRepHA)
}

// staleRead judges a read on node (in role, begun at t) that returned a
// value older than a write acknowledged before it began; newer is that
// write (its span and whether its wait was cancelled or warned).
func (d *docContext) staleRead(node, role string, t int64, newer call) docVerdict {
	if role == rolePrimary {
		if newer.warned() {
			return documented("the newer write was acknowledged with the sync-wait warning: it might not have been replicated, and a failover could lose it", docSyncRepHA)
		}
		if v, ok := d.losable(newer.invT, newer.compT, newer.cancelled()); ok {
			return v
		}
		return undocumented("the primary serves every commit it acknowledged; PostgreSQL documents no stale read there", docSyncCommit)
	}
	return d.standbyBehind(node, t, newer.warned(), "a standby may serve a value older than an acknowledged write")
}

// standbyBehind judges a standby's read that shows less than the primary
// had acknowledged or shown.
func (d *docContext) standbyBehind(node string, t int64, cancelled bool, what string) docVerdict {
	switch {
	case d.syncCommit != "remote_apply":
		return documented(fmt.Sprintf("with synchronous_commit=%s a commit is acknowledged before the standbys have replayed it, and data on a standby is eventually consistent with the primary: %s", d.syncCommit, what), docHotStandby)
	case !d.allApply || !d.sync.Eligible(node):
		return documented(fmt.Sprintf("with remote_apply and %q a commit waits for %d of the eligible standbys (%s) to replay it, and %s need not be one of them", d.sync.String(), d.sync.Num, strings.Join(d.eligible, ", "), node), docSyncNames)
	case cancelled:
		return documented("the newer write's wait for the standbys was cancelled: PostgreSQL warns that such a commit might not have been replicated", docSyncRepHA)
	case d.rt.movedBetween(t, t):
		return documented(fmt.Sprintf("%s was being rejoined or re-pointed at that moment and was not yet in the sync list", node), docSyncNames)
	}
	return undocumented(fmt.Sprintf("with synchronous_commit=remote_apply and %q every eligible standby replays a commit before it is acknowledged, so PostgreSQL documents no such read on %s", d.sync.String(), node), docSyncCommit)
}

// newThenOld judges a read (on node2, role2, begun at t) that returned an
// older value than an earlier read on node1 in role1; cancelled says the
// newer value's write had its wait cancelled.
func (d *docContext) newThenOld(role1, node2, role2 string, t, newA, newB int64, cancelled bool) docVerdict {
	switch {
	case role1 == rolePrimary && role2 == rolePrimary:
		if v, ok := d.losable(newA, newB, cancelled); ok {
			return v
		}
		return undocumented("both reads were served by the primary, which shows commits in one order", docSyncCommit)
	case role1 == rolePrimary:
		return d.standbyBehind(node2, t, cancelled, "a standby may show less than the primary showed a moment earlier")
	}
	return documented("a read on a standby was involved: standbys replay commits on their own time, before or after the primary shows them, and are only eventually consistent with it", docHotStandby)
}

// The anomalies that PostgreSQL never documents, with the reason.
var (
	docNonMonotonic = undocumented("a node replays WAL in order and makes each commit visible to every later snapshot, so its reads never go back without a failover or rewind", docHotStandby)
	docFailed       = undocumented("the client was told the write failed (or it never reached the server), yet it took effect: the error classification or the server broke its promise", docSyncCommit)
	docUnwritten    = undocumented("no client wrote this value", docSyncCommit)
	docDivergent    = undocumented("once every standby has replayed the primary's WAL, it holds the primary's data", docHotStandby)
	docBank         = undocumented("each read is one snapshot, in which the transfers keep the total", docSyncCommit)
	docNonLinearAll = documented("standbys are only eventually consistent with the primary, so reads across nodes need not fit one order", docHotStandby)
)

// nonLinearizable judges a key whose writes and primary reads have no
// legal order that no named anomaly explains: when the run lost commits
// in a way PostgreSQL documents (a lossy configuration, a forced
// promotion, cancelled waits, or writes of this key acknowledged with the
// warning or cancelled), the unnamed pattern is one more trace of that;
// otherwise it is a finding.
func (d *docContext) nonLinearizable(keyCancelled bool) docVerdict {
	if v, ok := d.losable(math.MinInt64, -1, keyCancelled); ok {
		return documented("no named anomaly explains the missing order, but "+v.why, v.url)
	}
	return undocumented("no named anomaly explains why porcupine found no legal order, and nothing in this run's configuration or faults lets PostgreSQL lose or reorder acknowledged commits", docSyncCommit)
}
