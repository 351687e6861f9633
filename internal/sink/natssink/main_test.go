package natssink_test

import (
	"os"
	"testing"

	"github.com/kycd/kycd/internal/testenv"
)

// The sink's tests need a NATS server with JetStream.
func TestMain(m *testing.M) {
	testenv.Report(os.Stdout, "internal/sink/natssink", testenv.NATS)
	os.Exit(m.Run())
}
