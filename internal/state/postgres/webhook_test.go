package postgres_test

import (
	"testing"

	"github.com/modgate/modgate/internal/webhook"
	"github.com/modgate/modgate/internal/webhook/webhooktest"
)

func TestDeliveriesConformance(t *testing.T) {
	webhooktest.RunDeliveries(t, func(t *testing.T) webhook.DeliveryStore {
		db, _ := migrated(t)
		return db.Deliveries()
	})
}
