package store

import (
	"context"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// collection is a collection of the store's: the driver's, with the write
// methods the store uses passing through the store's write gate first (a
// write method the store starts to use belongs here too). Reads are the
// driver's own.
type collection struct {
	*mongo.Collection
	writes gate
}

// record names one document of the collection: "customer" of customers.
func (c collection) record() string { return strings.TrimSuffix(c.Name(), "s") }

// gate admits a bounded number of operations into the embedded engine at a
// time, the others waiting in line, first come, first served, each within its
// operation's deadline (past it: ErrUnavailable, a 503). A nil gate admits
// everything: MongoDB and an engine shared with other processes order their
// work themselves. The store has two:
//
// Writes, one at a time. SQLite has a single writer; FerretDB leaves the
// others to SQLite's busy handler, which puts them to sleep and retries with
// growing pauses (up to 100 ms). With dozens of concurrent writers that
// sleeping halved throughput and stretched the slowest requests to seconds
// (BenchmarkConcurrentLoad). The price: a write that filters on something
// other than _id (a cascading delete's DeleteMany) holds the gate while the
// engine reads the collection.
//
// Lists, one per CPU. The engine reads, filters and sorts the whole collection
// in this process for every page: CPU and memory in proportion to the
// collection. With 32 clients listing 10,000 customers at once, the server
// grew to 1.27 GiB and every list outlived the 5 s timeout: none was
// answered. In line (see enterWithin): 142 MiB, and 1.3 lists a second
// answered, as many as two cores can do, the others told at once to retry.
type gate chan struct{}

// enter waits for the gate; leave must be called when the operation is done.
func (g gate) enter(ctx context.Context) (leave func(), err error) {
	if g == nil {
		return func() {}, nil
	}
	select {
	case g <- struct{}{}:
		return func() { <-g }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// enterWithin is enter, waiting at most share of the time left before ctx's
// deadline. In an overload, a queue served first come, first served would
// admit the operations that waited longest, just before their deadline: each
// would then run out of time half-way, all its work wasted, and none be
// answered. Bounding the wait keeps the rest of the time for the work.
func (g gate) enterWithin(ctx context.Context, share float64) (leave func(), err error) {
	if deadline, ok := ctx.Deadline(); ok && g != nil {
		wait := time.Duration(float64(time.Until(deadline)) * share)
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, wait)
		defer cancel()
	}
	return g.enter(ctx)
}

// gated runs write once the gate lets it in.
func gated[R any](ctx context.Context, g gate, write func() (R, error)) (R, error) {
	leave, err := g.enter(ctx)
	if err != nil {
		var none R
		return none, err
	}
	defer leave()
	return write()
}

func (c collection) InsertOne(ctx context.Context, doc any, opts ...options.Lister[options.InsertOneOptions]) (*mongo.InsertOneResult, error) {
	return gated(ctx, c.writes, func() (*mongo.InsertOneResult, error) { return c.Collection.InsertOne(ctx, doc, opts...) })
}

func (c collection) InsertMany(ctx context.Context, docs any, opts ...options.Lister[options.InsertManyOptions]) (*mongo.InsertManyResult, error) {
	return gated(ctx, c.writes, func() (*mongo.InsertManyResult, error) { return c.Collection.InsertMany(ctx, docs, opts...) })
}

func (c collection) UpdateOne(ctx context.Context, filter, update any, opts ...options.Lister[options.UpdateOneOptions]) (*mongo.UpdateResult, error) {
	return gated(ctx, c.writes, func() (*mongo.UpdateResult, error) { return c.Collection.UpdateOne(ctx, filter, update, opts...) })
}

func (c collection) UpdateMany(ctx context.Context, filter, update any, opts ...options.Lister[options.UpdateManyOptions]) (*mongo.UpdateResult, error) {
	return gated(ctx, c.writes, func() (*mongo.UpdateResult, error) { return c.Collection.UpdateMany(ctx, filter, update, opts...) })
}

func (c collection) DeleteOne(ctx context.Context, filter any, opts ...options.Lister[options.DeleteOneOptions]) (*mongo.DeleteResult, error) {
	return gated(ctx, c.writes, func() (*mongo.DeleteResult, error) { return c.Collection.DeleteOne(ctx, filter, opts...) })
}

func (c collection) DeleteMany(ctx context.Context, filter any, opts ...options.Lister[options.DeleteManyOptions]) (*mongo.DeleteResult, error) {
	return gated(ctx, c.writes, func() (*mongo.DeleteResult, error) { return c.Collection.DeleteMany(ctx, filter, opts...) })
}

func (c collection) BulkWrite(ctx context.Context, models []mongo.WriteModel, opts ...options.Lister[options.BulkWriteOptions]) (*mongo.BulkWriteResult, error) {
	return gated(ctx, c.writes, func() (*mongo.BulkWriteResult, error) { return c.Collection.BulkWrite(ctx, models, opts...) })
}

func (c collection) FindOneAndUpdate(ctx context.Context, filter, update any, opts ...options.Lister[options.FindOneAndUpdateOptions]) *mongo.SingleResult {
	leave, err := c.writes.enter(ctx)
	if err != nil {
		return mongo.NewSingleResultFromDocument(bson.D{}, err, nil)
	}
	defer leave()
	return c.Collection.FindOneAndUpdate(ctx, filter, update, opts...)
}
