package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/modgate/modgate/internal/config"
	"github.com/modgate/modgate/internal/storage"
	"github.com/modgate/modgate/internal/storage/disk"
	"github.com/modgate/modgate/internal/storage/s3"
)

// storageReadyTimeout bounds the storage probe of one /readyz request.
const storageReadyTimeout = 2 * time.Second

// openStore builds the module store cfg.Storage names: the disk store in
// {data_dir}/modules (after removing the temporary files of a crashed
// process), or an S3 bucket with its local cache.
func openStore(ctx context.Context, cfg config.Config, log *slog.Logger) (storage.Store, error) {
	if cfg.Storage.Type != config.StorageTypeS3 {
		store, err := disk.New(filepath.Join(cfg.DataDir, "modules"))
		if err != nil {
			return nil, fmt.Errorf("opening module store: %w", err)
		}
		if n, err := store.CleanTemp(); err != nil {
			log.Warn("cleaning interrupted writes failed", "err", err)
		} else if n > 0 {
			log.Info("removed interrupted writes", "count", n)
		}
		return store, nil
	}
	c := cfg.Storage.S3
	ak, sk, err := s3Credentials(c)
	if err != nil {
		return nil, fmt.Errorf("opening module store: %w", err)
	}
	store, err := s3.New(ctx, s3.Config{
		Endpoint:      c.Endpoint,
		Region:        c.Region,
		Bucket:        c.Bucket,
		Prefix:        c.Prefix,
		PathStyle:     c.PathStyle,
		AccessKey:     ak,
		SecretKey:     sk,
		CacheDir:      cfg.S3CacheDir(),
		CacheMaxBytes: int64(c.CacheMaxMB) << 20,
		Log:           log.With("component", "s3"),
	})
	if err != nil {
		return nil, fmt.Errorf("opening module store: %w", err)
	}
	return store, nil
}

// s3Credentials reads the access and secret key from the credentials file
// or the environment variables the configuration names.
func s3Credentials(c config.StorageS3) (access, secret string, err error) {
	if c.CredentialsFile != "" {
		data, err := os.ReadFile(c.CredentialsFile)
		if err != nil {
			return "", "", fmt.Errorf("storage.s3.credentials_file: %w", err)
		}
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		if len(lines) != 2 || strings.TrimSpace(lines[0]) == "" || strings.TrimSpace(lines[1]) == "" {
			return "", "", fmt.Errorf("storage.s3.credentials_file %s: want two lines, the access key and the secret key", c.CredentialsFile)
		}
		return strings.TrimSpace(lines[0]), strings.TrimSpace(lines[1]), nil
	}
	access, secret = os.Getenv(c.AccessKeyEnv), os.Getenv(c.SecretKeyEnv)
	var errs []error
	if access == "" {
		errs = append(errs, fmt.Errorf("storage.s3.access_key_env: environment variable %s is empty", c.AccessKeyEnv))
	}
	if secret == "" {
		errs = append(errs, fmt.Errorf("storage.s3.secret_key_env: environment variable %s is empty", c.SecretKeyEnv))
	}
	return access, secret, errors.Join(errs...)
}

// storageReadiness reports whether the module store can be reached, for
// /readyz: stores without a probe (the disk store) always can.
func (s *Server) storageReadiness() error {
	r, ok := s.store.(interface{ Ready(context.Context) error })
	if !ok {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), storageReadyTimeout)
	defer cancel()
	if err := r.Ready(ctx); err != nil {
		return fmt.Errorf("not ready: module storage: %w", err)
	}
	return nil
}
