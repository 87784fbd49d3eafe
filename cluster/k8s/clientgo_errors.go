package k8s

import (
	"context"
	"sync"
	"sync/atomic"

	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
)

// client-go reports the errors it cannot return (a port-forward stream
// that a killed node refused, a stream that timed out on a loaded machine)
// through utilruntime.HandleError, which prints them with klog on the
// process's stderr, in the middle of the harness's progress lines: on a
// real cluster a test printed hundreds. They are expected consequences of
// the faults, and the harness records every failed operation itself, so
// the backend hands them to the Logf of the cluster that is up (and drops
// them when it has none, as the CLI's).
var (
	clientGoLogf      atomic.Pointer[func(format string, args ...any)]
	clientGoErrorsSet sync.Once
)

// routeClientGoErrors makes logf receive client-go's unreturnable errors
// until releaseClientGoErrors is called with what it returned.
func routeClientGoErrors(logf func(format string, args ...any)) *func(format string, args ...any) {
	clientGoErrorsSet.Do(func() {
		utilruntime.ErrorHandlers = []utilruntime.ErrorHandler{clientGoError}
	})
	p := &logf
	clientGoLogf.Store(p)
	return p
}

// releaseClientGoErrors stops sending client-go's errors to the Logf that
// routeClientGoErrors returned p for (a test's Logf must not be called after
// the test).
func releaseClientGoErrors(p *func(format string, args ...any)) {
	clientGoLogf.CompareAndSwap(p, nil)
}

func clientGoError(_ context.Context, err error, msg string, keysAndValues ...any) {
	if p := clientGoLogf.Load(); p != nil && *p != nil {
		(*p)("k8s: client-go: %s", utilruntime.ErrorToString(err, msg, keysAndValues...))
	}
}
