package store

import (
	"context"
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
// now. It runs after the delete: a server that stops in between leaves no
// trace, where one written first would list a record that a refused delete
// kept.
func (s *Store) recordDeletions(ctx context.Context, coll collection, ids []bson.ObjectID) error {
	if len(ids) == 0 {
		return nil
	}
	at := now()
	docs := make([]Deletion, len(ids))
	for i, id := range ids {
		docs[i] = Deletion{ID: bson.NewObjectID(), Record: coll.record(), RecordID: id, DeletedAt: at}
	}
	ctx, cancel := s.opContext(context.WithoutCancel(ctx)) // the delete is done: its trace must be too
	defer cancel()
	_, err := s.deletions.InsertMany(ctx, docs)
	return translate(err)
}

// maxCascadeRounds bounds the rounds of a cascade (see cascadeDelete).
const maxCascadeRounds = 10

// cascadeChunk is how many records one delete of a cascade names.
const cascadeChunk = 1000

// cascadeDelete deletes the records of ref that refer to id and match
// allowed, and records their deletions. It deletes by id what it found, so
// that it knows what it deleted; a record that comes to refer to id
// meanwhile is found by the next round.
func (s *Store) cascadeDelete(ctx context.Context, ref reference, id bson.ObjectID, allowed bson.D) error {
	referring := append(bson.D{{Key: ref.field, Value: id}}, allowed...)
	for range maxCascadeRounds {
		ids, err := s.idsOf(ctx, ref.coll, referring)
		if err != nil || len(ids) == 0 {
			return err
		}
		for chunk := range slices.Chunk(ids, cascadeChunk) {
			inChunk := bson.D{{Key: fieldID, Value: bson.D{{Key: "$in", Value: chunk}}}}
			res, err := ref.coll.DeleteMany(ctx, append(inChunk, referring...))
			if err != nil {
				return translate(err)
			}
			gone := chunk
			if int(res.DeletedCount) < len(chunk) {
				// Some changed meanwhile and no longer matched: they stay.
				kept, err := s.idsOf(ctx, ref.coll, inChunk)
				if err != nil {
					return err
				}
				gone = slices.DeleteFunc(slices.Clone(chunk), func(id bson.ObjectID) bool { return slices.Contains(kept, id) })
			}
			if err := s.recordDeletions(ctx, ref.coll, gone); err != nil {
				return err
			}
		}
	}
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
