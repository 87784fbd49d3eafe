package results

import (
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"testing"
)

// sameAsJSON checks that UnmarshalLine reads b as encoding/json does.
func sameAsJSON(t *testing.T, b []byte) {
	t.Helper()
	var fast, ref Op
	ferr := fast.UnmarshalLine(b)
	rerr := json.Unmarshal(b, &ref)
	if (ferr == nil) != (rerr == nil) {
		t.Fatalf("%q: UnmarshalLine error %v, encoding/json %v", b, ferr, rerr)
	}
	if ferr == nil && !reflect.DeepEqual(fast, ref) {
		t.Fatalf("%q:\n fast %+v\n json %+v", b, fast, ref)
	}
}

// The fast decoder reads what the encoder writes exactly as encoding/json
// does, for every kind of line.
func TestUnmarshalLineMatchesEncodingJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for range 20000 {
		op := randomOp(rng)
		b, err := op.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		sameAsJSON(t, b)
	}
	// The lines the harness writes by the million take the fast path.
	for _, op := range []Op{
		{V: 2, Index: 12345678, Time: 3_000_123_456_789, Process: 7, Type: Invoke, F: FWrite, Workload: WorkloadRegister, Key: "k3", Value: Int(9_000_001), Node: "n1"},
		{V: 2, Index: 12345679, Time: 3_000_123_999_789, Process: 7, Type: OK, F: FCAS, Workload: WorkloadRegister, Key: "k3", Value: Int(9_000_002), Expect: Int(9_000_001), Node: "n1", Warning: "canceling wait for synchronous replication due to user request"},
		{V: 2, Index: 1, Time: 2, Process: 1, Type: OK, F: FRead, Workload: WorkloadSet, Lo: 100, Hi: 227, Missing: []int64{226, 227}, Node: "n2"},
		{V: 2, Index: 1, Time: 2, Process: 1, Type: Fail, F: FRead, Workload: WorkloadRegister, Key: "k1", Node: "n2", Error: "workload: connect: dial tcp 10.213.0.12:5432: connect: connection refused"},
		{V: 2, Index: 1, Time: 2, Process: 2, Type: Invoke, F: FTransfer, Workload: WorkloadBank, Transfer: &Transfer{ID: 4, From: 1, To: 0, Amount: 3}, Node: "n1"},
		{V: 2, Index: 5, Time: 6, Process: 3, Type: Invoke, F: FTxn, Workload: WorkloadAppend, Txn: []Mop{Append(4, 17), ReadOf(4, nil), ReadOf(6, nil)}, Node: "n1"},
		{V: 2, Index: 6, Time: 7, Process: 3, Type: OK, F: FTxn, Workload: WorkloadAppend, Txn: []Mop{Append(4, 17), ReadOf(4, []int64{3, 17}), ReadOf(6, []int64{})}, Node: "n1"},
	} {
		b, _ := op.Marshal()
		var o Op
		if !fastDecode(&o, b, nil) {
			t.Errorf("%s does not take the fast path", b)
		}
		sameAsJSON(t, b)
	}
	for _, s := range []string{`{}`, `{"v":1}`, `{"v":1,"index":-0}`, `{"v":01}`, `{"v":1.5}`, `{"v":1e3}`, `{"VALUE":3}`,
		`{"v":1, "index":2}`, `{"process":"harness"}`, `{"process":"other"}`, `{"process":-1}`, `{"values":[]}`,
		`{"values":[1,2,]}`, `{"transfer":{"id":1,"from":2,"to":3,"amount":4}}`, `{"transfer":{"from":2,"id":1,"to":3,"amount":4}}`,
		`{"key":"a\"b"}`, `{"node":"grüße"}`, `{"v":99999999999999999999}`, `{"f":"read","f":"write"}`, `{"x":1}`, `{"v":1}x`, `[1]`,
		`{"txn":[]}`, `{"txn":null}`, `{"txn":[["r",1,null]]}`, `{"txn":[["append",1,null]]}`, `{"txn":[["r",1,5]]}`, `{"txn":[["x",1,[2]]]}`,
		`{"txn":[["r",1,nul]]}`, `{"txn":[["append",1,2],]}`, `{"txn":[["append",1,2,3]]}`, `{"txn":[["append",-1,-2]],"txn":[]}`, `{"txn":[["r",1,[1,2]]`} {
		sameAsJSON(t, []byte(s))
	}
}

// FuzzUnmarshalLine: on any input, the fast decoder and encoding/json
// agree.
//
//	go test -run '^$' -fuzz FuzzUnmarshalLine -fuzztime 60s ./results/
func FuzzUnmarshalLine(f *testing.F) {
	rng := rand.New(rand.NewPCG(1, 1))
	for range 20 {
		op := randomOp(rng)
		b, _ := op.Marshal()
		f.Add(b)
	}
	f.Add([]byte(`{"v":2,"index":4,"time":3099123811,"process":3,"type":"invoke","f":"write","workload":"register","key":"k9","value":2,"node":"n1"}`))
	f.Fuzz(func(t *testing.T, b []byte) { sameAsJSON(t, b) })
}
