package arbiter

import (
	"fmt"
	"time"
)

// Config is what a lease store's Open needs; postgres.Config and
// etcd.Config are this type.
type Config struct {
	// URL is the store's connection string (postgres://..., etcd://...);
	// it prints as its redacted form and never appears in an error.
	URL DSN
	// Cluster names the cluster's lease (a PostgreSQL row, etcd keys):
	// nodes of one cluster share it, other clusters may share the store.
	Cluster string
	// Timing is the lease timing; the zero Timing means DefaultTiming().
	Timing Timing
	// OpTimeout bounds every request to the store, connecting included; 0
	// means Timing.Renew (by then the holder's next renewal is due anyway).
	OpTimeout time.Duration
	// Now is the local clock deadlines are computed on; nil means time.Now.
	Now func() time.Time
}

// WithDefaults returns c with the defaults of its zero fields filled in,
// or the first problem that makes it unusable by a store of the given
// kind: an invalid Timing, or no Cluster.
func (c Config) WithDefaults(kind Kind) (Config, error) {
	if c.Timing == (Timing{}) {
		c.Timing = DefaultTiming()
	}
	if err := c.Timing.Validate(); err != nil {
		return c, err
	}
	if c.Cluster == "" {
		return c, fmt.Errorf("%s arbiter: empty cluster name", kind)
	}
	if c.OpTimeout <= 0 {
		c.OpTimeout = c.Timing.Renew
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c, nil
}
