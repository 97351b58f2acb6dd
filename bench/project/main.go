// Command project is the workload of modgate's benchmark suite (see
// ../README.md). It exists only so that `go mod tidy` keeps a realistic
// multi-hundred-module dependency graph in go.mod and go.sum: the suite
// downloads that graph, it never builds or runs this program.
package main

import (
	"fmt"

	"cloud.google.com/go/storage"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/gin-gonic/gin"
	consul "github.com/hashicorp/consul/api"
	vault "github.com/hashicorp/vault/api"
	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.opentelemetry.io/otel/sdk/trace"
	"google.golang.org/grpc"
	"k8s.io/client-go/kubernetes"
)

// uses names one symbol of every imported package so that none is unused.
var uses = []any{
	storage.NewClient,
	azblob.NewClientFromConnectionString,
	config.LoadDefaultConfig,
	dynamodb.New, ec2.New, s3.New,
	gin.New,
	consul.NewClient,
	vault.NewClient,
	pgx.Connect,
	nats.Connect,
	prometheus.NewRegistry,
	redis.NewClient,
	cobra.Command{},
	clientv3.New,
	mongo.Connect,
	trace.NewTracerProvider,
	grpc.NewServer,
	kubernetes.NewForConfig,
}

func main() {
	fmt.Println(len(uses))
}
