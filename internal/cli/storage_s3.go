package cli

import "github.com/modgate/modgate/internal/upstream"

// explainS3 says where module files live when storage.type is s3.
func (e *explainer) explainS3() {
	c := e.cfg.Storage.S3
	endpoint := c.Endpoint
	if endpoint == "" {
		endpoint = "AWS, region " + c.Region
	}
	e.printf("  in S3:               bucket %q, key prefix %q, at %s (storage.type from %s)\n",
		c.Bucket, c.Prefix, upstream.RedactURL(endpoint), e.cfg.Where("storage.type"))
	e.printf("  local cache:         %s, at most %d MB\n", e.cfg.S3CacheDir(), c.CacheMaxMB)
}
