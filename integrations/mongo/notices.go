package mongo

import (
	"context"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"

	"github.com/medshare/medshare/consent"
	"github.com/medshare/medshare/records"
)

var _ records.NoticeStore = (*RecordStore)(nil)

// noticeIndexes: notices are stored as records.Notice with its bson tags
// and a server-generated _id; an id is stored once, and a patient's
// listing is a range of the (patientRef, id) index.
var noticeIndexes = []index{
	{name: "id", keys: bson.D{{Key: "id", Value: 1}}, unique: true},
	{name: "patientRef_id", keys: bson.D{{Key: "patientRef", Value: 1}, {Key: "id", Value: 1}}},
}

// SaveNotice implements records.NoticeStore: the first save of an id wins,
// saving it again (even with other fields) changes nothing. EINVALID
// without an id or patientRef.
func (s *RecordStore) SaveNotice(ctx context.Context, n *records.Notice) error {
	if n == nil || n.ID == "" || n.PatientRef == "" {
		return consent.Errorf(consent.EINVALID, "notice needs an id and a patientRef")
	}
	_, err := s.notices.InsertOne(ctx, n)
	if mongo.IsDuplicateKeyError(err) {
		return nil
	}
	return wrapError(err, "save notice %s", n.ID)
}

// Notices implements records.NoticeStore. EINVALID without a patient or
// with a negative limit.
func (s *RecordStore) Notices(ctx context.Context, f records.NoticeFilter) ([]*records.Notice, error) {
	limit, err := f.PageLimit()
	if err != nil {
		return nil, err
	}
	cur, err := s.notices.Find(ctx,
		bson.D{{Key: "patientRef", Value: f.PatientRef}, {Key: "id", Value: bson.D{{Key: "$gt", Value: f.After}}}},
		options.Find().SetSort(bson.D{{Key: "id", Value: 1}}).SetLimit(int64(limit)))
	if err != nil {
		return nil, wrapError(err, "list notices")
	}
	ns := []*records.Notice{}
	if err := cur.All(ctx, &ns); err != nil {
		return nil, wrapError(err, "list notices")
	}
	return ns, nil
}
