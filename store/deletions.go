package store

import (
	"context"
	"errors"
	"slices"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Deletions, for sync jobs. A list's updated_since finds the records that
// changed since a moment; a deleted record is no longer there to be found, so
// each delete leaves a trace — what kind of record, its id, when — kept for
// DeletionRetention and listed by ListDeletions.

const (
	deletionsCollection    = "deletions"
	deletionFieldRecord    = "record" // "user", "customer" or "interaction"
	deletionFieldRecordID  = "record_id"
	deletionFieldDeletedAt = "deleted_at"
)

// DeletionRetention is how long a deletion stays listed. A sync job that
// waits longer between runs must read everything again.
const DeletionRetention = 90 * 24 * time.Hour

// Deletion is the trace a deleted record leaves.
type Deletion struct {
	ID        bson.ObjectID `bson:"_id"`
	Record    string        `bson:"record"` // "user", "customer" or "interaction"
	RecordID  bson.ObjectID `bson:"record_id"`
	DeletedAt time.Time     `bson:"deleted_at"`
}

// DeletionFilter selects deletions for ListDeletions; zero fields do not filter.
type DeletionFilter struct {
	Records []string   // kinds of record, any of them
	Since   *time.Time // deleted at or after
}

// ListDeletions lists deletions, by deleted_at (the only sort).
func (s *Store) ListDeletions(ctx context.Context, f DeletionFilter, opts ListOptions) (Page[Deletion], error) {
	var filter bson.D
	if len(f.Records) > 0 {
		filter = append(filter, anyOf(deletionFieldRecord, f.Records))
	}
	if f.Since != nil {
		filter = append(filter, bson.E{Key: deletionFieldDeletedAt, Value: bson.D{{Key: "$gte", Value: ceilMillisecond(*f.Since)}}})
	}
	return list(ctx, s, s.deletions, filter, opts, func(*Deletion) {})
}

// recordDeletions leaves the traces of the records ids of coll, deleted just
// now. It runs after the delete, which it cannot fail: a trace that cannot
// be written is logged, as a server that stops in between leaves none. One
// written first would list a record that a refused delete kept. A record
// whose trace is there already (two deletes of it at once) keeps that one.
func (s *Store) recordDeletions(ctx context.Context, coll collection, ids []bson.ObjectID) {
	if len(ids) == 0 {
		return
	}
	at := now()
	docs := make([]Deletion, len(ids))
	for i, id := range ids {
		docs[i] = Deletion{ID: bson.NewObjectID(), Record: coll.record(), RecordID: id, DeletedAt: at}
	}
	ctx, cancel := s.opContext(context.WithoutCancel(ctx)) // the delete is done: its trace must be too
	defer cancel()
	_, err := s.deletions.InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
	if err = translate(err); err != nil && !errors.Is(err, ErrDuplicate) {
		s.log.Error("recording deletions for sync", "record", coll.record(), "count", len(ids), "error", err)
	}
}

// cascadeDelete deletes the records of ref that refer to id and match
// allowed, and records the deletions of those it found just before and finds
// gone just after: one that a concurrent write took out of the cascade
// meanwhile is still there, and leaves no trace. (One that a concurrent move
// brought in meanwhile leaves its trace through the move, which sees it
// gone; see updateReferencing.) Reading the collection before and after
// costs two reads; deleting by id would cost one per thousand records.
func (s *Store) cascadeDelete(ctx context.Context, ref reference, id bson.ObjectID, allowed bson.D) error {
	referring := append(bson.D{{Key: ref.field, Value: id}}, allowed...)
	ids, err := s.idsOf(ctx, ref.coll, referring)
	if err != nil {
		return err
	}
	if _, err := ref.coll.DeleteMany(ctx, referring); err != nil || len(ids) == 0 {
		return translate(err)
	}
	// Not by the count deleted: one moved out and one moved in meanwhile
	// would leave it equal to the number found.
	kept, err := s.idsOf(ctx, ref.coll, bson.D{{Key: fieldID, Value: bson.D{{Key: "$in", Value: ids}}}})
	if err != nil {
		return err
	}
	s.recordDeletions(ctx, ref.coll, slices.DeleteFunc(ids, func(id bson.ObjectID) bool { return slices.Contains(kept, id) }))
	return nil
}

// idsOf returns the ids of the documents of coll that match filter.
func (s *Store) idsOf(ctx context.Context, coll collection, filter bson.D) ([]bson.ObjectID, error) {
	cur, err := coll.Find(ctx, filter, options.Find().SetProjection(bson.D{{Key: fieldID, Value: 1}}))
	if err != nil {
		return nil, translate(err)
	}
	var docs []struct {
		ID bson.ObjectID `bson:"_id"`
	}
	if err := cur.All(ctx, &docs); err != nil {
		return nil, translate(err)
	}
	ids := make([]bson.ObjectID, len(docs))
	for i, d := range docs {
		ids[i] = d.ID
	}
	return ids, nil
}
