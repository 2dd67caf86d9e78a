package artifact

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/flink-gitops/flink-gitops/config"
)

var _ Source = (*S3)(nil)

// DefaultGCSEndpoint is GCS's S3-compatible XML API.
const DefaultGCSEndpoint = "https://storage.googleapis.com"

// maxKeyBytes is S3's (and GCS's) limit on an object name.
const maxKeyBytes = 1024

// S3Config says where s3:// (and Flink's aliases s3a://, s3p://) and gs://
// jars come from: the daemon config's artifacts.s3 and artifacts.gcs. Only
// the bucket and key come from a spec; endpoint and credentials never do.
type S3Config struct {
	S3  config.ObjectStore
	GCS config.ObjectStore
}

// S3ConfigFrom takes the object stores out of the daemon config.
func S3ConfigFrom(a config.Artifacts) S3Config {
	return S3Config{S3: a.S3, GCS: a.GCS}
}

// objectRef is a parsed object-store jarURI.
type objectRef struct {
	gcs         bool
	bucket, key string
}

// configKey is the daemon config block that governs the URI.
func (r objectRef) configKey() string {
	if r.gcs {
		return "artifacts.gcs"
	}
	return "artifacts.s3"
}

func (c S3Config) store(r objectRef) config.ObjectStore {
	if r.gcs {
		return c.GCS
	}
	return c.S3
}

// IsObjectStoreScheme says whether S3 reads URIs of this scheme.
func IsObjectStoreScheme(scheme string) bool {
	scheme = strings.ToLower(scheme)
	return scheme == config.GCSScheme || slices.Contains(config.S3Schemes, scheme)
}

// CheckURI checks an object-store jarURI offline (no network): the scheme,
// the bucket against the allow-list, and the key. It returns what is wrong
// and how to fix it; msg is empty when S3 may read the URI. Validation and
// plan call it; Open calls it again before any request.
func (c S3Config) CheckURI(u *url.URL) (msg, fix string) {
	_, msg, fix = c.locate(u)
	return msg, fix
}

func (c S3Config) locate(u *url.URL) (objectRef, string, string) {
	var r objectRef
	if u == nil {
		return r, "jarURI is empty", "write s3://bucket/key or gs://bucket/key"
	}
	uri := u.Redacted()
	scheme := strings.ToLower(u.Scheme)
	if !IsObjectStoreScheme(scheme) {
		return r, fmt.Sprintf("jarURI %s is not an object-store URI", uri), "write s3://bucket/key (s3a://, s3p://) or gs://bucket/key"
	}
	r.gcs = scheme == config.GCSScheme
	key := r.configKey()
	if u.User != nil || u.Port() != "" || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return r, fmt.Sprintf("jarURI %s has a user, port, query or fragment; an object store URI names only a bucket and a key", uri),
			fmt.Sprintf("write %s://bucket/key; the endpoint and credentials come from %s in the daemon config", scheme, key)
	}
	r.bucket = u.Host
	r.key = strings.TrimPrefix(u.Path, "/")
	if r.bucket == "" {
		return r, fmt.Sprintf("jarURI %s names no bucket", uri), fmt.Sprintf("write %s://bucket/key", scheme)
	}
	if m := checkKey(r.key); m != "" {
		return r, fmt.Sprintf("jarURI %s: %s", uri, m), "name the jar object itself, e.g. " + scheme + "://" + r.bucket + "/jobs/job-1.0.jar"
	}
	allowed := c.store(r).AllowedBuckets
	if len(allowed) == 0 {
		return r, fmt.Sprintf("jarURI %s: the daemon reads no %s:// jars (%s.allowedBuckets is empty)", uri, scheme, key),
			fmt.Sprintf("add %q (or %s/prefix/) to %s.allowedBuckets in the daemon config", r.bucket, r.bucket, key)
	}
	if !bucketAllowed(allowed, r.bucket, r.key) {
		return r, fmt.Sprintf("jarURI %s: bucket %q (key %q) is not in %s.allowedBuckets %v", uri, r.bucket, r.key, key, allowed),
			fmt.Sprintf("put the jar in an allowed bucket, or add %q (or %s/prefix/) to %s.allowedBuckets in the daemon config", r.bucket, r.bucket, key)
	}
	return r, "", ""
}

// checkKey refuses keys that are empty, name a "directory", climb with
// "." or ".." segments (a store or proxy that normalizes paths would read
// another object than the allow-list checked) or hold control characters.
func checkKey(key string) string {
	switch {
	case key == "":
		return "names no object key"
	case len(key) > maxKeyBytes:
		return fmt.Sprintf("key is longer than %d bytes", maxKeyBytes)
	case strings.HasSuffix(key, "/"):
		return "key ends in / (a folder, not a jar)"
	case strings.ContainsFunc(key, unicode.IsControl):
		return "key holds control characters"
	}
	for _, seg := range strings.Split(key, "/") {
		if seg == "." || seg == ".." {
			return fmt.Sprintf("key %q has a %q segment", key, seg)
		}
	}
	return ""
}

// bucketAllowed: some entry names the bucket, with no prefix or a prefix
// the key starts with. Malformed entries (refused by config validation)
// allow nothing.
func bucketAllowed(entries []string, bucket, key string) bool {
	for _, e := range entries {
		b, prefix, err := config.SplitBucketEntry(e)
		if err == nil && b == bucket && strings.HasPrefix(key, prefix) {
			return true
		}
	}
	return false
}

// S3 opens jars in S3, S3-compatible stores and GCS (through its XML API).
type S3 struct {
	cfg S3Config
	s3  *s3.Client // nil while artifacts.s3.allowedBuckets is empty
	gcs *s3.Client // nil while artifacts.gcs.allowedBuckets is empty
}

// NewS3 builds the clients for the stores that have an allow-list. It does
// no network I/O; credentials are looked up at the first request.
func NewS3(ctx context.Context, c S3Config) (*S3, error) {
	s := &S3{cfg: c}
	var err error
	if len(c.S3.AllowedBuckets) > 0 {
		if s.s3, err = newS3Client(ctx, c.S3); err != nil {
			return nil, fmt.Errorf("artifacts.s3: %w", err)
		}
	}
	if len(c.GCS.AllowedBuckets) > 0 {
		if s.gcs, err = newGCSClient(c.GCS); err != nil {
			return nil, fmt.Errorf("artifacts.gcs: %w", err)
		}
	}
	return s, nil
}

// newS3Client: the SDK's default chain (environment, shared files, web
// identity/IRSA, instance role) for region and credentials, unless the
// config names them.
func newS3Client(ctx context.Context, o config.ObjectStore) (*s3.Client, error) {
	var opts []func(*awsconfig.LoadOptions) error
	if o.Region != "" {
		opts = append(opts, awsconfig.WithRegion(o.Region))
	}
	if o.AccessKeyIDFile != "" {
		opts = append(opts, awsconfig.WithCredentialsProvider(fileCredentials{key: "artifacts.s3", idFile: o.AccessKeyIDFile, secretFile: o.SecretAccessKeyFile}))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("load AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		return nil, errors.New("no region: set artifacts.s3.region, or AWS_REGION in the daemon's environment")
	}
	return s3.NewFromConfig(cfg, func(so *s3.Options) {
		if o.Endpoint != "" {
			so.BaseEndpoint = aws.String(o.Endpoint)
		}
		so.UsePathStyle = o.PathStyle
		if o.AccessKeyIDFile != "" {
			so.HTTPSignerV4 = uncachedSigner{}
		}
		// Checksums only where the API requires them: S3-compatible stores
		// and GCS do not all know the newer ones, and a jar is verified by
		// its flink-gitops.jar.sha256 anyway.
		so.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		so.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	}), nil
}

// newGCSClient talks to GCS's XML API with HMAC keys. It reads nothing from
// the AWS environment, so AWS settings meant for S3 cannot leak into it.
func newGCSClient(o config.ObjectStore) (*s3.Client, error) {
	if o.AccessKeyIDFile == "" || o.SecretAccessKeyFile == "" {
		return nil, errors.New("gs:// needs HMAC keys: set accessKeyIDFile and secretAccessKeyFile")
	}
	endpoint, region := o.Endpoint, o.Region
	if endpoint == "" {
		endpoint = DefaultGCSEndpoint
	}
	if region == "" {
		region = "auto"
	}
	return s3.New(s3.Options{
		BaseEndpoint:               aws.String(endpoint),
		Region:                     region,
		UsePathStyle:               o.PathStyle,
		HTTPSignerV4:               uncachedSigner{},
		Credentials:                aws.NewCredentialsCache(fileCredentials{key: "artifacts.gcs", idFile: o.AccessKeyIDFile, secretFile: o.SecretAccessKeyFile}),
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	}), nil
}

// fileCredentials reads a key pair from two files (a mounted Secret). The
// SDK's cache keeps it for keyFileTTL, so a rotated Secret is picked up
// within minutes without a restart.
type fileCredentials struct {
	key                string // config block, for errors
	idFile, secretFile string
}

// maxKeyFileBytes bounds what is read from a key file.
const maxKeyFileBytes = 4096

// keyFileTTL is how long a key pair read from files is used before the
// files are read again (a variable for the rotation test).
var keyFileTTL = 5 * time.Minute

// uncachedSigner signs each request with a fresh SigV4 signer. The SDK's
// signer caches the derived signing key by access key id for a day, so a
// Secret rotated under the same key id would go on being signed with the
// old secret; four HMACs per jar download are nothing.
type uncachedSigner struct{}

// SignHTTP signs r as the S3 client's own signer does (no URI path
// escaping), without its key cache.
func (uncachedSigner) SignHTTP(ctx context.Context, creds aws.Credentials, r *http.Request, payloadHash, service, region string, t time.Time, optFns ...func(*v4.SignerOptions)) error {
	signer := v4.NewSigner(func(so *v4.SignerOptions) { so.DisableURIPathEscaping = true })
	return signer.SignHTTP(ctx, creds, r, payloadHash, service, region, t, optFns...)
}

// Retrieve reads both files; errors name the files, never their content.
func (f fileCredentials) Retrieve(context.Context) (aws.Credentials, error) {
	id, err := readKeyFile(f.idFile)
	if err != nil {
		return aws.Credentials{}, fmt.Errorf("%s.accessKeyIDFile: %w", f.key, err)
	}
	secret, err := readKeyFile(f.secretFile)
	if err != nil {
		return aws.Credentials{}, fmt.Errorf("%s.secretAccessKeyFile: %w", f.key, err)
	}
	return aws.Credentials{AccessKeyID: id, SecretAccessKey: secret, Source: "flink-gitops key files",
		CanExpire: true, Expires: time.Now().Add(keyFileTTL)}, nil
}

func readKeyFile(path string) (string, error) {
	fh, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer fh.Close()
	b, err := io.ReadAll(io.LimitReader(fh, maxKeyFileBytes+1))
	if err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	if len(b) > maxKeyFileBytes {
		return "", fmt.Errorf("%s is larger than %d bytes; it should hold one key", path, maxKeyFileBytes)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return s, nil
}

// Open starts reading the object a jarURI names. A URI outside the
// allow-list is refused before any request. The caller bounds time (ctx)
// and size, and closes the body.
func (s *S3) Open(ctx context.Context, u *url.URL) (io.ReadCloser, error) {
	r, msg, fix := s.cfg.locate(u)
	if msg != "" {
		return nil, &ObjectError{URI: uriString(u), Code: "NotAllowed", Permanent: true, Message: msg + "; fix: " + fix}
	}
	client := s.s3
	if r.gcs {
		client = s.gcs
	}
	if client == nil {
		return nil, &ObjectError{URI: u.Redacted(), Code: "NotConfigured", Permanent: true,
			Message: fmt.Sprintf("%s is not configured; fix: set %s.allowedBuckets in the daemon config", r.configKey(), r.configKey())}
	}
	out, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(r.bucket), Key: aws.String(r.key)})
	if err != nil {
		return nil, objectError(u.Redacted(), r, err)
	}
	return out.Body, nil
}

func uriString(u *url.URL) string {
	if u == nil {
		return ""
	}
	return u.Redacted()
}

// ObjectError is a jar that could not be read from an object store. Its
// message carries the store's error code and text, never credentials.
type ObjectError struct {
	// URI is the jarURI.
	URI string
	// Code is the store's error code (NoSuchKey, AccessDenied, ...), or
	// NotAllowed / NotConfigured for a refusal before any request.
	Code string
	// Status is the HTTP status of the store's answer, 0 without one.
	Status int
	// Permanent: retrying the same URI with the same config cannot help.
	Permanent bool
	// Message says what happened and, for permanent errors, what to fix.
	Message string

	err error
}

func (e *ObjectError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "read %s", e.URI)
	if e.Code != "" {
		fmt.Fprintf(&b, ": %s", e.Code)
	}
	if e.Status != 0 {
		fmt.Fprintf(&b, " (HTTP %d)", e.Status)
	}
	if e.Message != "" {
		fmt.Fprintf(&b, ": %s", e.Message)
	}
	return b.String()
}

// Unwrap gives the SDK's error (for context.DeadlineExceeded and the like).
func (e *ObjectError) Unwrap() error { return e.err }

// Is makes a permanent ObjectError an ErrInvalid, as the Fetcher's callers
// expect of every jar problem a retry cannot fix.
func (e *ObjectError) Is(target error) bool { return e.Permanent && target == ErrInvalid }

// IsPermanent says whether err is an object-store error that retrying
// cannot fix (missing key or bucket, access denied, refused by the
// allow-list): the jar is invalid until the spec or the config changes.
// Such errors also match errors.Is(err, ErrInvalid).
func IsPermanent(err error) bool {
	var oe *ObjectError
	return errors.As(err, &oe) && oe.Permanent
}

// permanentCodes are the store answers that mean the URI or the
// credentials are wrong, not the moment.
var permanentCodes = map[string]string{
	"NoSuchKey":                    "no object at that key: check the jarURI, or upload the jar",
	"NotFound":                     "no object at that key: check the jarURI, or upload the jar",
	"NoSuchBucket":                 "the bucket does not exist: check the jarURI",
	"InvalidBucketName":            "the bucket name is invalid: check the jarURI",
	"AccessDenied":                 "the daemon's credentials may not read it: grant it s3:GetObject (GCS: storage.objects.get) on the object",
	"AllAccessDisabled":            "access to the bucket is disabled",
	"InvalidAccessKeyId":           "the store does not know the access key: check the key files or the daemon's role",
	"SignatureDoesNotMatch":        "the secret key does not match the access key: check the key files",
	"AuthorizationHeaderMalformed": "the request was signed for another region: set the store's region in the daemon config",
	"PermanentRedirect":            "the bucket is in another region or endpoint: set the store's region/endpoint in the daemon config",
	"InvalidObjectState":           "the object is archived (e.g. Glacier) and must be restored first",
}

// objectError turns an SDK error into an ObjectError, keeping only the
// code, status and the store's message.
func objectError(uri string, r objectRef, err error) error {
	e := &ObjectError{URI: uri, err: err}
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		e.Status = re.HTTPStatusCode()
	}
	var api smithy.APIError
	if errors.As(err, &api) {
		e.Code = api.ErrorCode()
		e.Message = api.ErrorMessage()
	}
	if hint, ok := permanentCodes[e.Code]; ok {
		e.Permanent = true
		e.Message = strings.TrimSpace(e.Message + "; fix: " + hint + " (" + r.configKey() + ")")
		return e
	}
	switch e.Status {
	case http.StatusNotFound:
		e.Permanent = true
		e.Message += "; fix: check the jarURI and the key files (" + r.configKey() + ")"
	case http.StatusForbidden, http.StatusUnauthorized:
		e.Permanent = true
		e.Message += "; fix: check the key files or the daemon's role, and that it may read the object (" + r.configKey() + ")"
	case http.StatusBadRequest, http.StatusMovedPermanently:
		e.Permanent = true
		e.Message += "; fix: check the endpoint and region (" + r.configKey() + ")"
	}
	e.Message = strings.TrimPrefix(e.Message, "; ")
	if e.Message == "" {
		// Not an answer of the store: transport, context or credential
		// lookup. The SDK's text names the operation and cause, no secrets.
		e.Message = err.Error()
	}
	return e
}
