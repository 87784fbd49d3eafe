package local

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
)

// secrets are the passwords of one cluster, generated per cluster. They are
// kept in a root-only file in the cluster folder (so `cluster status` can
// print connection strings on request) and never logged or put in reports.
type secrets struct {
	Superuser string `json:"superuser"`
	Repl      string `json:"repl"`
	User      string `json:"user"`
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
