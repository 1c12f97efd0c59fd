package store

import (
	"context"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// collection is a collection of the store's: the driver's, with the write
// methods the store uses passing through its write gate first (a write method
// the store starts to use belongs here too). Reads are the driver's own.
type collection struct {
	*mongo.Collection
	gate writeGate
}

// writeGate lets one write at a time into the embedded engine. SQLite has a
// single writer; FerretDB leaves the others to SQLite's busy handler, which
// puts them to sleep and retries with growing pauses (up to 100 ms). With
// dozens of concurrent writers that sleeping halved throughput and stretched
// the slowest requests to seconds (BenchmarkConcurrentLoad). Waiting here
// instead is first come, first served, and bounded by the operation's
// context, whose deadline turns into 503. The price: a write that filters on
// something other than _id (a cascading delete's DeleteMany) holds the gate
// while the engine reads the collection. It is nil, letting everything
// through, on MongoDB and on a database shared with other processes.
type writeGate chan struct{}

// enter waits for the gate; leave must be called after the write.
func (g writeGate) enter(ctx context.Context) (leave func(), err error) {
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

func (c collection) InsertOne(ctx context.Context, doc any, opts ...options.Lister[options.InsertOneOptions]) (*mongo.InsertOneResult, error) {
	leave, err := c.gate.enter(ctx)
	if err != nil {
		return nil, err
	}
	defer leave()
	return c.Collection.InsertOne(ctx, doc, opts...)
}

func (c collection) InsertMany(ctx context.Context, docs any, opts ...options.Lister[options.InsertManyOptions]) (*mongo.InsertManyResult, error) {
	leave, err := c.gate.enter(ctx)
	if err != nil {
		return nil, err
	}
	defer leave()
	return c.Collection.InsertMany(ctx, docs, opts...)
}

func (c collection) UpdateOne(ctx context.Context, filter, update any, opts ...options.Lister[options.UpdateOneOptions]) (*mongo.UpdateResult, error) {
	leave, err := c.gate.enter(ctx)
	if err != nil {
		return nil, err
	}
	defer leave()
	return c.Collection.UpdateOne(ctx, filter, update, opts...)
}

func (c collection) UpdateMany(ctx context.Context, filter, update any, opts ...options.Lister[options.UpdateManyOptions]) (*mongo.UpdateResult, error) {
	leave, err := c.gate.enter(ctx)
	if err != nil {
		return nil, err
	}
	defer leave()
	return c.Collection.UpdateMany(ctx, filter, update, opts...)
}

func (c collection) DeleteOne(ctx context.Context, filter any, opts ...options.Lister[options.DeleteOneOptions]) (*mongo.DeleteResult, error) {
	leave, err := c.gate.enter(ctx)
	if err != nil {
		return nil, err
	}
	defer leave()
	return c.Collection.DeleteOne(ctx, filter, opts...)
}

func (c collection) DeleteMany(ctx context.Context, filter any, opts ...options.Lister[options.DeleteManyOptions]) (*mongo.DeleteResult, error) {
	leave, err := c.gate.enter(ctx)
	if err != nil {
		return nil, err
	}
	defer leave()
	return c.Collection.DeleteMany(ctx, filter, opts...)
}

func (c collection) FindOneAndUpdate(ctx context.Context, filter, update any, opts ...options.Lister[options.FindOneAndUpdateOptions]) *mongo.SingleResult {
	leave, err := c.gate.enter(ctx)
	if err != nil {
		return mongo.NewSingleResultFromDocument(bson.D{}, err, nil)
	}
	defer leave()
	return c.Collection.FindOneAndUpdate(ctx, filter, update, opts...)
}
