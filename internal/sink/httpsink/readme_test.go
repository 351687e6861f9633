package httpsink_test

import (
	"os"
	"strings"
	"testing"
)

// docs/notifications.md shows the receiver of Example_receiver; this keeps the two the
// same, so the documentation's code is code a test runs.
func TestReadmeShowsTheTestedReceiver(t *testing.T) {
	src, err := os.ReadFile("example_receiver_test.go")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile("../../../docs/notifications.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(src)
	start := strings.Index(s, "// receiver handles")
	end := strings.Index(s, `// README excerpt "Receiving notifications": end`)
	if start < 0 || end < start {
		t.Fatal("example_receiver_test.go lost its README excerpt markers")
	}
	excerpt := strings.TrimSpace(s[start:end])
	if !strings.Contains(string(readme), excerpt) {
		t.Fatalf("docs/notifications.md does not contain the receiver of example_receiver_test.go verbatim; paste it again:\n%s", excerpt)
	}
}
