package kycd_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// compiledMagic are the first bytes of executables and objects: ELF,
// Mach-O (32 and 64 bit, both byte orders, universal) and PE.
var compiledMagic = [][]byte{
	[]byte("\x7fELF"),
	{0xfe, 0xed, 0xfa, 0xce}, {0xce, 0xfa, 0xed, 0xfe},
	{0xfe, 0xed, 0xfa, 0xcf}, {0xcf, 0xfa, 0xed, 0xfe},
	{0xca, 0xfe, 0xba, 0xbe},
	[]byte("MZ"),
	[]byte("!<arch>\n"), // Go and C archives
}

// No compiled file is committed: build output belongs in .gitignore.
func TestNoCompiledFilesInGit(t *testing.T) {
	out, err := exec.CommandContext(t.Context(), "git", "ls-files", "-z").Output()
	if err != nil {
		t.Skipf("not in a git work tree (git ls-files: %v)", err)
	}
	top, err := exec.CommandContext(t.Context(), "git", "rev-parse", "--show-prefix").Output()
	if err != nil || strings.TrimSpace(string(top)) != "" {
		t.Skip("run from the repository's root")
	}
	for _, name := range strings.Split(strings.TrimRight(string(out), "\x00"), "\x00") {
		switch filepath.Ext(name) {
		case ".test", ".exe", ".o", ".a", ".so", ".dylib", ".prof":
			t.Errorf("git tracks %s, build output: git rm --cached it", name)
			continue
		}
		f, err := os.Open(name)
		if err != nil {
			continue // deleted in the work tree, not yet in the index
		}
		head := make([]byte, 8)
		n, _ := f.Read(head)
		f.Close()
		for _, m := range compiledMagic {
			if bytes.HasPrefix(head[:n], m) {
				t.Errorf("git tracks %s, a compiled file: git rm --cached it and ignore it in .gitignore", name)
				break
			}
		}
	}
}
