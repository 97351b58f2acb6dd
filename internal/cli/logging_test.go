package cli

import (
	"strings"
	"testing"
	"time"

	"github.com/modgate/modgate/internal/config"
	"github.com/modgate/modgate/internal/reqlog"
	"github.com/modgate/modgate/internal/testenv"
)

func TestLoggerBatchesOnlyAccessLines(t *testing.T) {
	var out testenv.LogBuffer
	log, stop := newLogger(config.Log{Level: config.LogLevelInfo, Format: config.LogFormatText}, &out)
	defer stop()

	log.Info("serving", "addr", "127.0.0.1:3000")
	if !strings.Contains(out.String(), "msg=serving") {
		t.Fatalf("a lifecycle line was not written at once: %q", out.String())
	}
	log.Info(reqlog.Message, "path", "/a")
	if strings.Contains(out.String(), "path=/a") {
		t.Error("an access-log line was written at once; it should wait for the next batch")
	}
	log.Warn(reqlog.Message, "path", "/b", "status", 502)
	if !strings.Contains(out.String(), "path=/b") || !strings.Contains(out.String(), "path=/a") {
		t.Errorf("a Warn line must flush at once, with what was batched before it: %q", out.String())
	}
	log.Info(reqlog.Message, "path", "/c")
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(out.String(), "path=/c") {
		if time.Now().After(deadline) {
			t.Fatal("a batched access-log line was never flushed")
		}
		time.Sleep(10 * time.Millisecond)
	}
	log.Info(reqlog.Message, "path", "/d")
	stop()
	if !strings.Contains(out.String(), "path=/d") {
		t.Error("stop did not flush the last access-log line")
	}
}
