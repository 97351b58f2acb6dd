package ledger

import "log/slog"

// FileBackendForTest opens the file backend in dir.
func FileBackendForTest(dir string) Backend {
	f, records, err := openFile(dir, slog.New(slog.DiscardHandler))
	if err != nil {
		panic(err)
	}
	return &fileBackend{file: f, records: records}
}
