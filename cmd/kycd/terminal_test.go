package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// --json output holds no control character but the LF of its lines, and
// still reads back as the same value.
func TestPrintJSONEscapesWhatTheEncoderKeeps(t *testing.T) {
	t.Parallel()
	in := map[string]string{"message": strings.ReplaceAll(hostile, "\xff", "\uFFFD")}
	var b bytes.Buffer
	if err := printJSON(&b, in); err != nil {
		t.Fatal(err)
	}
	if where := rawControl(b.String()); where != "" {
		t.Errorf("printJSON printed a raw control character: %s", where)
	}
	var out map[string]string
	if err := json.Unmarshal(b.Bytes(), &out); err != nil || out["message"] != in["message"] {
		t.Errorf("printJSON's output reads back as %q (%v), want %q", out["message"], err, in["message"])
	}
}
