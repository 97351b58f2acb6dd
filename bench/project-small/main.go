// Command project-small is the small workload of modgate's benchmark suite
// (see ../README.md): a service's worth of dependencies (an HTTP framework, a
// CLI library, a database driver, a cache client and metrics) instead of the
// large workload's cloud SDKs. It exists only so that `go mod tidy` keeps its
// dependency graph in go.mod and go.sum; the suite never builds or runs it.
package main

import (
	"fmt"

	"github.com/gin-gonic/gin"
	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"
)

// uses names one symbol of every imported package so that none is unused.
var uses = []any{
	gin.New,
	pgx.Connect,
	prometheus.NewRegistry,
	redis.NewClient,
	cobra.Command{},
}

func main() {
	fmt.Println(len(uses))
}
