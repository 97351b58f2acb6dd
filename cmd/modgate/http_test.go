package main

import (
	"context"
	"net/http"
	"time"
)

var httpClient = &http.Client{Timeout: 60 * time.Second}

func newGet(ctx context.Context, url string) (*http.Request, error) {
	return http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
}
