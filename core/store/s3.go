package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/logging"
)

// S3 is a Store on an S3-compatible object store, rooted at a key prefix of
// one bucket. The SDK is aws-sdk-go-v2: it reads the standard AWS
// environment variables and config files (AWS_REGION, AWS_ENDPOINT_URL,
// AWS_ACCESS_KEY_ID, AWS_PROFILE, ~/.aws/config, ...), and the options
// given here (named as pylance's storage_options) override them.
//
// How each promise of the Store contract is kept:
//   - Put and Writer.Commit are one PutObject: S3 makes an object visible
//     only complete and durable. A Writer buffers in memory (flushed
//     fragments are modest; the engine bounds them by batch_size).
//   - PutIfAbsent is a PutObject with If-None-Match: *. The server refuses
//     (412) when the key exists, atomically with respect to other writers.
//     The SDK's own retries are off for it: a retry after a lost response
//     would meet our own object and report a race we won as lost. Instead a
//     412, a 409 (a concurrent conditional write in progress) or a
//     transport error is resolved by reading the key back: our bytes mean
//     we won (the payloads we write are unique: manifests hold a timestamp
//     and a transaction id, epochs and log groups their writer), other
//     bytes mean we lost (os.ErrExist), nothing means the put can be
//     repeated; a read that fails too wraps ErrUncertain.
//   - Open does a HEAD (a missing object wraps os.ErrNotExist) and reads
//     by ranged GETs; sizes of opened objects are cached (objects written
//     through a Store are never rewritten in place, except by Put of small
//     metadata, which is read with Get).
//   - List and ListInfo are ListObjectsV2 with a "/" delimiter; a
//     directory with no key below it is missing (os.ErrNotExist).
//   - Remove is DeleteObject; MkdirAll, SyncDir and SyncRoot do nothing.
type S3Options struct {
	// Endpoint of an S3-compatible server ("http://127.0.0.1:9000");
	// empty: AWS_ENDPOINT_URL(_S3), else AWS itself.
	Endpoint string
	Region   string
	// Static credentials; empty: the SDK's default chain (environment,
	// shared files, instance roles).
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
	// AllowHTTP permits a plain-HTTP endpoint (pylance's allow_http); an
	// http:// endpoint without it is refused, as pylance refuses it.
	AllowHTTP bool
	// VirtualHosted addresses buckets as bucket.host (AWS's default);
	// false (the default here) uses path-style requests, which every
	// S3-compatible server accepts.
	VirtualHosted bool
	// Timeout bounds each request (default 60 s).
	Timeout time.Duration
	// MaxAttempts is the SDK's retry budget for idempotent requests
	// (default 5); conditional puts are retried here, see S3.
	MaxAttempts int
}

// S3OptionsFrom reads storage options named as pylance's storage_options
// (the object_store crate's keys: aws_endpoint, aws_region,
// aws_access_key_id, aws_secret_access_key, aws_session_token, allow_http,
// aws_virtual_hosted_style_request, with or without the aws_ prefix, and
// endpoint_url). An unknown key is an error rather than silently ignored.
func S3OptionsFrom(opts map[string]string) (S3Options, error) {
	var o S3Options
	for k, v := range opts {
		key := strings.ToLower(k)
		switch strings.TrimPrefix(key, "aws_") {
		case "endpoint", "endpoint_url":
			o.Endpoint = v
		case "region", "default_region":
			o.Region = v
		case "access_key_id":
			o.AccessKeyID = v
		case "secret_access_key":
			o.SecretAccessKey = v
		case "session_token", "token":
			o.SessionToken = v
		case "allow_http":
			b, err := parseBool(k, v)
			if err != nil {
				return o, err
			}
			o.AllowHTTP = b
		case "virtual_hosted_style_request":
			b, err := parseBool(k, v)
			if err != nil {
				return o, err
			}
			o.VirtualHosted = b
		case "timeout":
			d, err := time.ParseDuration(v)
			if err != nil {
				return o, fmt.Errorf("store: storage option %s=%q: a duration such as 30s", k, v)
			}
			o.Timeout = d
		case "conditional_put", "s3_express", "skip_signature", "checksum_algorithm", "unsigned_payload":
			// pylance's own knobs; conditional puts are always used here.
		default:
			return o, fmt.Errorf("store: unknown storage option %q", k)
		}
	}
	return o, nil
}

func parseBool(k, v string) (bool, error) {
	switch strings.ToLower(v) {
	case "true", "1", "yes", "on":
		return true, nil
	case "false", "0", "no", "off", "":
		return false, nil
	}
	return false, fmt.Errorf("store: storage option %s=%q: true or false", k, v)
}

// IsURI reports whether p names an object store location ("s3://...")
// rather than a local path.
func IsURI(p string) bool { return strings.HasPrefix(p, "s3://") }

// ParseS3URI splits "s3://bucket/some/prefix" into the bucket and the key
// prefix (no leading or trailing slash).
func ParseS3URI(uri string) (bucket, prefix string, err error) {
	u, err := url.Parse(uri)
	if err != nil || u.Scheme != "s3" || u.Host == "" {
		return "", "", fmt.Errorf("store: %q is not an s3://bucket/prefix URI", uri)
	}
	return u.Host, strings.Trim(path.Clean("/"+u.Path), "/"), nil
}

// S3Client is a configured client for one endpoint; Stores of any bucket
// and prefix share it (and its connection pool).
type S3Client struct {
	c *s3.Client
}

// NewS3Client builds a client from the SDK's defaults overridden by o.
func NewS3Client(ctx context.Context, o S3Options) (*S3Client, error) {
	var lo []func(*config.LoadOptions) error
	if o.Region != "" {
		lo = append(lo, config.WithRegion(o.Region))
	}
	if o.AccessKeyID != "" || o.SecretAccessKey != "" {
		lo = append(lo, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(o.AccessKeyID, o.SecretAccessKey, o.SessionToken)))
	}
	attempts := o.MaxAttempts
	if attempts <= 0 {
		attempts = 5
	}
	lo = append(lo, config.WithLogger(logging.Nop{}), config.WithRetryer(func() aws.Retryer {
		// No client-side retry quota: a connection cut under a burst of
		// requests must not turn into failures of later, healthy ones.
		return retry.NewStandard(func(so *retry.StandardOptions) {
			so.MaxAttempts = attempts
			so.RateLimiter = ratelimit.None
		})
	}))
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = 60 * time.Second
	}
	lo = append(lo, config.WithHTTPClient(awshttp.NewBuildableClient().
		WithTimeout(timeout).
		WithDialerOptions(func(d *net.Dialer) { d.Timeout = 10 * time.Second }).
		WithTransportOptions(func(tr *http.Transport) { tr.MaxIdleConnsPerHost = 64 })))
	cfg, err := config.LoadDefaultConfig(ctx, lo...)
	if err != nil {
		return nil, fmt.Errorf("store: s3 configuration: %w", err)
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	endpoint := o.Endpoint
	if endpoint == "" && cfg.BaseEndpoint != nil {
		endpoint = *cfg.BaseEndpoint
	}
	if strings.HasPrefix(strings.ToLower(endpoint), "http://") && !o.AllowHTTP {
		return nil, fmt.Errorf("store: endpoint %s is plain HTTP; set allow_http=true to use it", endpoint)
	}
	c := s3.NewFromConfig(cfg, func(so *s3.Options) {
		if o.Endpoint != "" {
			so.BaseEndpoint = aws.String(o.Endpoint)
		}
		so.UsePathStyle = !o.VirtualHosted
		// Checksums only when the operation requires one: S3-compatible
		// servers differ in the trailing checksums they accept.
		so.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		so.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	})
	return &S3Client{c: c}, nil
}

// Store returns the Store rooted at prefix of bucket.
func (c *S3Client) Store(bucket, prefix string) Store {
	return &s3Store{c: c.c, bucket: bucket, prefix: strings.Trim(prefix, "/")}
}

// API is the SDK client, for callers that need an operation the Store does
// not have (creating a bucket in tests, say).
func (c *S3Client) API() *s3.Client { return c.c }

// OpenS3 opens the Store at an s3:// URI with the given storage options.
func OpenS3(uri string, storageOptions map[string]string) (Store, error) {
	bucket, prefix, err := ParseS3URI(uri)
	if err != nil {
		return nil, err
	}
	o, err := S3OptionsFrom(storageOptions)
	if err != nil {
		return nil, err
	}
	c, err := NewS3Client(context.Background(), o)
	if err != nil {
		return nil, err
	}
	return c.Store(bucket, prefix), nil
}

type s3Store struct {
	c      *s3.Client
	bucket string
	prefix string
	sizes  sync.Map // key -> int64, of objects opened for ranged reads
}

func (s *s3Store) Root() string {
	if s.prefix == "" {
		return "s3://" + s.bucket
	}
	return "s3://" + s.bucket + "/" + s.prefix
}

func (s *s3Store) key(name string) string {
	name = strings.TrimPrefix(path.Clean("/"+name), "/")
	switch {
	case s.prefix == "":
		return name
	case name == "":
		return s.prefix
	}
	return s.prefix + "/" + name
}

func (s *s3Store) url(name string) string { return "s3://" + s.bucket + "/" + s.key(name) }

// ctx bounds one call; the HTTP client's timeout bounds each attempt.
func ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 5*time.Minute)
}

// s3Error classifies an SDK error: a missing key or bucket wraps
// os.ErrNotExist, and the message names the object.
func (s *s3Store) s3Error(op, name string, err error) error {
	if isStatus(err, http.StatusNotFound) || isCode(err, "NoSuchKey", "NotFound", "NoSuchBucket") {
		return fmt.Errorf("store: %s %s: %w", op, s.url(name), os.ErrNotExist)
	}
	return fmt.Errorf("store: %s %s: %w", op, s.url(name), err)
}

func isStatus(err error, code int) bool {
	var re interface{ HTTPStatusCode() int }
	return errors.As(err, &re) && re.HTTPStatusCode() == code
}

func isCode(err error, codes ...string) bool {
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return false
	}
	for _, c := range codes {
		if ae.ErrorCode() == c {
			return true
		}
	}
	return false
}

func (s *s3Store) Put(name string, data []byte) error {
	c, cancel := ctx()
	defer cancel()
	_, err := s.c.PutObject(c, &s3.PutObjectInput{
		Bucket: &s.bucket, Key: aws.String(s.key(name)),
		Body: bytes.NewReader(data), ContentLength: aws.Int64(int64(len(data))),
	})
	if err != nil {
		return s.s3Error("put", name, err)
	}
	return nil
}

// putIfAbsentAttempts bounds the conditional puts of one PutIfAbsent whose
// outcome stayed unknown (transport errors with nothing at the key after).
const putIfAbsentAttempts = 5

func (s *s3Store) PutIfAbsent(name string, data []byte) error {
	var last error
	for attempt := range putIfAbsentAttempts {
		if attempt > 0 {
			time.Sleep(time.Duration(attempt*attempt) * 100 * time.Millisecond)
		}
		c, cancel := ctx()
		_, err := s.c.PutObject(c, &s3.PutObjectInput{
			Bucket: &s.bucket, Key: aws.String(s.key(name)),
			Body: bytes.NewReader(data), ContentLength: aws.Int64(int64(len(data))),
			IfNoneMatch: aws.String("*"),
		}, func(o *s3.Options) { o.RetryMaxAttempts = 1 })
		cancel()
		if err == nil {
			return nil
		}
		last = err
		if isStatus(err, http.StatusBadRequest) || isStatus(err, http.StatusForbidden) ||
			isStatus(err, http.StatusNotImplemented) || isCode(err, "NoSuchBucket", "AccessDenied", "NotImplemented") {
			return s.s3Error("put-if-absent", name, err) // certain: nothing was written
		}
		// 412 (exists), 409 (a concurrent conditional put), 5xx or a
		// transport error: whose object is at the key, if any?
		got, gerr := s.Get(name)
		switch {
		case gerr == nil && bytes.Equal(got, data):
			return nil // ours: an earlier attempt landed
		case gerr == nil:
			return fmt.Errorf("store: put-if-absent %s: %w", s.url(name), os.ErrExist)
		case errors.Is(gerr, os.ErrNotExist):
			continue // nothing there: the put can be repeated
		default:
			return fmt.Errorf("%w: put-if-absent %s: %w; reading it back: %w", ErrUncertain, s.url(name), err, gerr)
		}
	}
	return fmt.Errorf("%w: put-if-absent %s: %d attempts: %w", ErrUncertain, s.url(name), putIfAbsentAttempts, last)
}

func (s *s3Store) Create(name string) (Writer, error) {
	return &s3Writer{s: s, name: name}, nil
}

type s3Writer struct {
	s    *s3Store
	name string
	buf  bytes.Buffer
	done bool
}

func (w *s3Writer) Write(b []byte) (int, error) {
	if w.done {
		return 0, fmt.Errorf("store: write %s after commit or abort", w.s.url(w.name))
	}
	return w.buf.Write(b)
}

func (w *s3Writer) Commit() error {
	if w.done {
		return fmt.Errorf("store: commit %s twice", w.s.url(w.name))
	}
	w.done = true
	err := w.s.Put(w.name, w.buf.Bytes())
	w.buf = bytes.Buffer{}
	return err
}

func (w *s3Writer) Abort() {
	w.done = true
	w.buf = bytes.Buffer{}
}

func (s *s3Store) Open(name string) (Object, error) {
	key := s.key(name)
	if v, ok := s.sizes.Load(key); ok {
		return &s3Object{s: s, name: name, size: v.(int64)}, nil
	}
	var out *s3.HeadObjectOutput
	err := retryRead(func() (err error) {
		c, cancel := ctx()
		defer cancel()
		out, err = s.c.HeadObject(c, &s3.HeadObjectInput{Bucket: &s.bucket, Key: &key})
		if err != nil {
			return s.s3Error("open", name, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	size := aws.ToInt64(out.ContentLength)
	s.sizes.Store(key, size)
	return &s3Object{s: s, name: name, size: size}, nil
}

type s3Object struct {
	s    *s3Store
	name string
	size int64
}

func (o *s3Object) Size() (int64, error) { return o.size, nil }

func (o *s3Object) Close() error { return nil }

func (o *s3Object) ReadAt(p []byte, off int64) (n int, err error) {
	err = retryRead(func() error {
		n, err = o.readAt(p, off)
		if err == io.EOF {
			return nil
		}
		return err
	})
	if err == nil && n < len(p) {
		err = io.EOF
	}
	return n, err
}

func (o *s3Object) readAt(p []byte, off int64) (int, error) {
	if off >= o.size {
		return 0, io.EOF
	}
	want := min(int64(len(p)), o.size-off)
	if want == 0 {
		return 0, nil
	}
	c, cancel := ctx()
	defer cancel()
	out, err := o.s.c.GetObject(c, &s3.GetObjectInput{
		Bucket: &o.s.bucket, Key: aws.String(o.s.key(o.name)),
		Range: aws.String(fmt.Sprintf("bytes=%d-%d", off, off+want-1)),
	})
	if err != nil {
		return 0, o.s.s3Error("read", o.name, err)
	}
	defer out.Body.Close()
	n, err := io.ReadFull(out.Body, p[:want])
	if err != nil {
		return n, fmt.Errorf("store: read %s at %d: %w", o.s.url(o.name), off, err)
	}
	if want < int64(len(p)) {
		return n, io.EOF
	}
	return n, nil
}

// readAttempts bounds the repeats of an idempotent read whose response
// broke off (a body cut mid-stream is not retried by the SDK).
const readAttempts = 4

// retryRead runs read until it succeeds, fails with a response of the
// server (a missing key, a refusal), or readAttempts ran out.
func retryRead(read func() error) error {
	var err error
	for attempt := range readAttempts {
		if attempt > 0 {
			time.Sleep(time.Duration(attempt*attempt) * 50 * time.Millisecond)
		}
		if err = read(); err == nil || errors.Is(err, os.ErrNotExist) || isServerAnswer(err) {
			return err
		}
	}
	return err
}

// isServerAnswer: the server answered with an error status (4xx), which a
// repeat would not change.
func isServerAnswer(err error) bool {
	var re interface{ HTTPStatusCode() int }
	return errors.As(err, &re) && re.HTTPStatusCode() >= 400 && re.HTTPStatusCode() < 500
}

func (s *s3Store) Get(name string) (data []byte, err error) {
	err = retryRead(func() error {
		data, err = s.get(name)
		return err
	})
	return data, err
}

func (s *s3Store) get(name string) ([]byte, error) {
	c, cancel := ctx()
	defer cancel()
	out, err := s.c.GetObject(c, &s3.GetObjectInput{Bucket: &s.bucket, Key: aws.String(s.key(name))})
	if err != nil {
		return nil, s.s3Error("get", name, err)
	}
	defer out.Body.Close()
	data, err := io.ReadAll(out.Body)
	if err != nil {
		return nil, fmt.Errorf("store: get %s: %w", s.url(name), err)
	}
	return data, nil
}

func (s *s3Store) List(dir string) ([]string, error) {
	infos, err := s.ListInfo(dir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, in := range infos {
		if !in.Dir {
			names = append(names, in.Name)
		}
	}
	return names, nil
}

func (s *s3Store) ListInfo(dir string) (out []Info, err error) {
	err = retryRead(func() error {
		out, err = s.listInfo(dir)
		return err
	})
	return out, err
}

func (s *s3Store) listInfo(dir string) ([]Info, error) {
	prefix := s.key(dir)
	if prefix != "" {
		prefix += "/"
	}
	c, cancel := ctx()
	defer cancel()
	var out []Info
	p := s3.NewListObjectsV2Paginator(s.c, &s3.ListObjectsV2Input{
		Bucket: &s.bucket, Prefix: &prefix, Delimiter: aws.String("/"),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(c)
		if err != nil {
			return nil, s.s3Error("list", dir, err)
		}
		for _, o := range page.Contents {
			name := strings.TrimPrefix(aws.ToString(o.Key), prefix)
			if name == "" {
				continue
			}
			out = append(out, Info{Name: name, Size: aws.ToInt64(o.Size), ModTime: aws.ToTime(o.LastModified)})
		}
		for _, cp := range page.CommonPrefixes {
			name := strings.TrimSuffix(strings.TrimPrefix(aws.ToString(cp.Prefix), prefix), "/")
			if name != "" {
				out = append(out, Info{Name: name, Dir: true})
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("store: list %s: %w", s.url(dir), os.ErrNotExist)
	}
	return out, nil
}

func (s *s3Store) Remove(name string) error {
	c, cancel := ctx()
	defer cancel()
	key := s.key(name)
	s.sizes.Delete(key)
	if _, err := s.c.DeleteObject(c, &s3.DeleteObjectInput{Bucket: &s.bucket, Key: &key}); err != nil {
		return s.s3Error("remove", name, err)
	}
	return nil
}

func (s *s3Store) MkdirAll(string) error { return nil }
func (s *s3Store) SyncDir(string) error  { return nil }
func (s *s3Store) SyncRoot() error       { return nil }

var (
	_ Store      = (*s3Store)(nil)
	_ InfoLister = (*s3Store)(nil)
)
