package k8s

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// ErrKubernetes is wrapped by every error that comes from the cluster or the
// way to it rather than from PostgreSQL's behaviour or the user's flags: no
// kubeconfig, an unreachable API server, missing RBAC permissions, an image
// that cannot be pulled, a pod that never becomes ready, a failed exec. The
// CLI maps it to exit code 255 (harness or infrastructure error). Bad
// options wrap cluster.ErrSpec instead (exit 254).
var ErrKubernetes = errors.New("kubernetes")

// apiError explains an API call's failure with the object it was about:
// "kubernetes: create pod ns/name: forbidden: ...". The API error stays
// reachable with errors.Is/As (apierrors.IsForbidden works on the result).
func apiError(verb, kind, namespace, name string, err error) error {
	obj := kind
	switch {
	case namespace != "" && name != "":
		obj += " " + namespace + "/" + name
	case name != "":
		obj += " " + name
	case namespace != "":
		obj += "s in namespace " + namespace
	}
	return fmt.Errorf("%w: %s %s: %s: %w", ErrKubernetes, verb, obj, reason(verb, kind, err), err)
}

// reason is the plain-words cause of an API error, with what to do.
func reason(verb, kind string, err error) string {
	var netErr net.Error
	switch {
	case apierrors.IsForbidden(err):
		return fmt.Sprintf("forbidden by RBAC (the account needs %q on %q; see the README's RBAC list)", verb, plural(kind))
	case apierrors.IsUnauthorized(err):
		return "unauthorized (the kubeconfig's credentials were rejected or expired)"
	case apierrors.IsAlreadyExists(err):
		return "already exists (another run in this namespace? pick another --namespace or run `strongcheck cluster down --backend k8s`)"
	case apierrors.IsNotFound(err):
		return "not found"
	case apierrors.IsTimeout(err), apierrors.IsServerTimeout(err):
		return "the API server timed out"
	case apierrors.IsInvalid(err):
		return "rejected as invalid"
	case errors.As(err, &netErr), strings.Contains(err.Error(), "connection refused"), strings.Contains(err.Error(), "no such host"):
		return "API server unreachable"
	}
	return "failed"
}

func plural(kind string) string {
	if strings.HasSuffix(kind, "s") {
		return kind + "es"
	}
	return kind + "s"
}

const (
	lowerAlnum = "abcdefghijklmnopqrstuvwxyz0123456789"
	alnum      = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
)

// randomString draws n characters of alphabet from crypto/rand without
// modulo bias.
func randomString(n int, alphabet string) string {
	out := make([]byte, 0, n)
	buf := make([]byte, 2*n)
	limit := 256 - 256%len(alphabet)
	for len(out) < n {
		if _, err := rand.Read(buf); err != nil {
			panic(fmt.Sprintf("crypto/rand: %v", err)) // the kernel's RNG does not fail
		}
		for _, b := range buf {
			if int(b) < limit && len(out) < n {
				out = append(out, alphabet[int(b)%len(alphabet)])
			}
		}
	}
	return string(out)
}
