package main

import (
	"cmp"
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// The release build (scripts/release) stamps these with -ldflags
// "-X main.version=v1.2.3 -X main.commit=… -X main.date=…"; a plain go
// build or go install leaves them empty and readBuild falls back on what
// the Go toolchain recorded.
var (
	version = ""
	commit  = ""
	date    = "" // the commit's time, RFC 3339
)

// build names the running build: in `kycd version`, `kycd --version` and
// the metric kycd_build_info.
type build struct {
	Version   string `json:"version"`
	Revision  string `json:"revision"`  // the VCS commit it was built from
	Modified  bool   `json:"modified"`  // built from a work tree with changes not committed
	Date      string `json:"date"`      // the commit's time (RFC 3339), or "unknown"
	GoVersion string `json:"goVersion"` // the Go toolchain that built it
}

// readBuild reads the build from -ldflags and what the Go toolchain
// records in the binary (debug.ReadBuildInfo): the module version of `go
// install …@v1.2.3`, the commit of a `go build` in a git work tree.
func readBuild() build {
	b := build{Version: version, Revision: commit, Date: date, GoVersion: runtime.Version()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if b.Version == "" && bi.Main.Version != "" {
			b.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch {
			case s.Key == "vcs.revision" && b.Revision == "":
				b.Revision = s.Value
			case s.Key == "vcs.time" && b.Date == "":
				b.Date = s.Value
			case s.Key == "vcs.modified":
				b.Modified = s.Value == "true"
			}
		}
	}
	b.Version = cmp.Or(b.Version, "(devel)")
	b.Revision = cmp.Or(b.Revision, "unknown")
	b.Date = cmp.Or(b.Date, "unknown")
	return b
}

// String is the build as one line: kycd VERSION (REVISION, DATE, GOVERSION).
func (b build) String() string {
	rev := b.Revision
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if b.Modified {
		rev += "+changes"
	}
	return fmt.Sprintf("kycd %s (%s, %s, %s)", b.Version, rev, b.Date, b.GoVersion)
}

func versionCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print kycd's version, the commit it was built from, that commit's date and its Go version",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return e.printVersion()
		},
	}
	e.use(cmd, "json")
	return cmd
}

// printVersion prints the build, for kycd version and kycd --version.
func (e *env) printVersion() error {
	b := readBuild()
	if e.cfg.JSON {
		return printJSON(e.stdout, b)
	}
	_, err := fmt.Fprintln(e.stdout, b)
	return err
}
