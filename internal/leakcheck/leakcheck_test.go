package leakcheck

import (
	"os"
	"path/filepath"
	"testing"
)

func TestFind(t *testing.T) {
	dir := t.TempDir()
	write := func(rel, text string) {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("a/b/c.log", "password=s3cret-one here")
	write("a/clean.txt", "nothing")
	write("d.json", `{"x":"s3cret-two"}`)
	outside := filepath.Join(t.TempDir(), "outside")
	if err := os.WriteFile(outside, []byte("s3cret-one"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	hits, files, err := Find(dir, "s3cret-one", "", "s3cret-two")
	if err != nil {
		t.Fatal(err)
	}
	if files != 3 || len(hits) != 2 {
		t.Fatalf("read %d files, hits %v; want 3 files (the link not followed) and 2 hits", files, hits)
	}
}
