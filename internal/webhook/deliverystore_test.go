package webhook_test

import (
	"path/filepath"
	"testing"

	"github.com/modgate/modgate/internal/webhook"
	"github.com/modgate/modgate/internal/webhook/webhooktest"
)

func TestFileDeliveries(t *testing.T) {
	webhooktest.RunDeliveries(t, func(t *testing.T) webhook.DeliveryStore {
		s, err := webhook.FileDeliveryStore(filepath.Join(t.TempDir(), "deliveries"), 100)
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}
