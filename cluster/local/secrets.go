package local

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// secrets are the passwords of one cluster, generated per cluster. They are
// kept in the cluster's runtime folder (paths.go), never in the cluster
// folder or the store: secrets.json, root only, so that `cluster status`
// can print connection strings on request, and pgpass, the servers' own.
// They are never logged or put in reports.
type secrets struct {
	Superuser string `json:"superuser"`
	Repl      string `json:"repl"`
	User      string `json:"user"`
}

// secretsPath is the root-only file of cluster id's passwords.
func secretsPath(id string) string { return filepath.Join(runtimeDir(id), "secrets.json") }

// passfilePath is the passfile by which the servers of cluster id (standbys
// streaming, pg_rewind) authenticate to each other, readable by postgres
// only.
func passfilePath(id string) string { return filepath.Join(runtimeDir(id), "pgpass") }

// writeSecrets writes sec into cluster id's runtime folder, which
// makePrivateDirs created.
func writeSecrets(id string, sec secrets, u pgUser) error {
	b, err := json.Marshal(sec)
	if err != nil {
		return fmt.Errorf("secrets: %w", err)
	}
	if err := os.WriteFile(secretsPath(id), b, 0o600); err != nil {
		return fmt.Errorf("secrets: %w", err)
	}
	// The replication password reaches standbys and pg_rewind through a
	// passfile readable by postgres only, never through conninfo strings
	// that land in postgresql.auto.conf or in process titles.
	line := fmt.Sprintf("*:*:*:repl:%s\n*:*:*:postgres:%s\n", sec.Repl, sec.Superuser)
	if err := os.WriteFile(passfilePath(id), []byte(line), 0o600); err != nil {
		return fmt.Errorf("passfile: %w", err)
	}
	if err := os.Chown(passfilePath(id), int(u.uid), int(u.gid)); err != nil {
		return fmt.Errorf("passfile: %w", err)
	}
	return nil
}

// readSecrets reads cluster id's passwords back (Attach).
func readSecrets(id string) (secrets, error) {
	var sec secrets
	b, err := os.ReadFile(secretsPath(id))
	if err != nil {
		return sec, fmt.Errorf("cluster secrets: %w", err)
	}
	if err := json.Unmarshal(b, &sec); err != nil {
		return sec, fmt.Errorf("cluster secrets %s: %w", secretsPath(id), err)
	}
	return sec, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err)) // the kernel's RNG does not fail
	}
	return hex.EncodeToString(b)
}

func newSecrets() secrets {
	return secrets{Superuser: randomHex(16), Repl: randomHex(16), User: randomHex(16)}
}

// scramVerifier computes PostgreSQL's SCRAM-SHA-256 secret for password, so
// that ALTER ROLE ... PASSWORD sends the verifier and the server never sees
// (or logs, on an error) the password itself.
func scramVerifier(password string) string {
	const iter = 4096
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err))
	}
	salted, err := pbkdf2.Key(sha256.New, password, salt, iter, 32)
	if err != nil {
		panic(fmt.Sprintf("pbkdf2: %v", err)) // only for invalid parameters
	}
	mac := func(key []byte, msg string) []byte {
		h := hmac.New(sha256.New, key)
		h.Write([]byte(msg))
		return h.Sum(nil)
	}
	clientKey := mac(salted, "Client Key")
	stored := sha256.Sum256(clientKey)
	serverKey := mac(salted, "Server Key")
	b64 := base64.StdEncoding.EncodeToString
	return fmt.Sprintf("SCRAM-SHA-256$%d:%s$%s:%s", iter, b64(salt), b64(stored[:]), b64(serverKey))
}
