package cloud

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/smithy-go/middleware"

	"github.com/director-lb/director/vrrp"
)

// EC2API is the part of *ec2.Client the mover uses.
type EC2API interface {
	AssignPrivateIpAddresses(context.Context, *ec2.AssignPrivateIpAddressesInput, ...func(*ec2.Options)) (*ec2.AssignPrivateIpAddressesOutput, error)
	UnassignPrivateIpAddresses(context.Context, *ec2.UnassignPrivateIpAddressesInput, ...func(*ec2.Options)) (*ec2.UnassignPrivateIpAddressesOutput, error)
	AssignIpv6Addresses(context.Context, *ec2.AssignIpv6AddressesInput, ...func(*ec2.Options)) (*ec2.AssignIpv6AddressesOutput, error)
	UnassignIpv6Addresses(context.Context, *ec2.UnassignIpv6AddressesInput, ...func(*ec2.Options)) (*ec2.UnassignIpv6AddressesOutput, error)
	AssociateAddress(context.Context, *ec2.AssociateAddressInput, ...func(*ec2.Options)) (*ec2.AssociateAddressOutput, error)
	DescribeNetworkInterfaces(context.Context, *ec2.DescribeNetworkInterfacesInput, ...func(*ec2.Options)) (*ec2.DescribeNetworkInterfacesOutput, error)
	DescribeAddresses(context.Context, *ec2.DescribeAddressesInput, ...func(*ec2.Options)) (*ec2.DescribeAddressesOutput, error)
}

// MetadataAPI is the part of *imds.Client the mover uses.
type MetadataAPI interface {
	GetMetadata(context.Context, *imds.GetMetadataInput, ...func(*imds.Options)) (*imds.GetMetadataOutput, error)
	GetInstanceIdentityDocument(context.Context, *imds.GetInstanceIdentityDocumentInput, ...func(*imds.Options)) (*imds.GetInstanceIdentityDocumentOutput, error)
}

var (
	_ EC2API      = (*ec2.Client)(nil)
	_ MetadataAPI = (*imds.Client)(nil)
)

// Options are the parts of a mover's setup that are not configuration.
type Options struct {
	Logger *slog.Logger
	// Credentials replace the SDK's default chain (environment, shared
	// files, then the instance role from IMDS) when set.
	Credentials aws.CredentialsProvider
	// HTTPClient carries the EC2 and metadata requests when set.
	HTTPClient aws.HTTPClient
	// InterfaceMAC finds a local interface's MAC address; nil uses
	// net.InterfaceByName.
	InterfaceMAC func(name string) (net.HardwareAddr, error)
	// ObserveCall, if set, hears of every EC2 API call: its operation
	// name, how long it took and its error (metrics).
	ObserveCall func(op string, took time.Duration, err error)
	// Clock replaces the system clock (tests).
	Clock Clock
}

// Identity is what the mover knows about where it runs.
type Identity struct {
	InstanceID string
	Region     string
	ENI        string
	// MAC is the ENI's MAC address, used to read its local-ipv4s from the
	// metadata service; empty until known.
	MAC string
}

// New discovers this instance with the metadata service (IMDSv2 only),
// builds an EC2 client with the SDK's default credential chain and returns
// a mover for cfg. local, if not nil, adds and removes the VIPs on the
// interface (vip.Local), so that IPVS receives what the VPC delivers.
func New(ctx context.Context, cfg EC2Config, local vrrp.Mover, opt Options) (*EC2Mover, error) {
	cfg, err := cfg.WithDefaults()
	if err != nil {
		return nil, fmt.Errorf("ec2 mover: %w", err)
	}
	meta := imds.New(imds.Options{
		Endpoint: cfg.IMDSEndpoint,
		// IMDSv1 is off on hardened instances and is the SSRF hole v2 closes.
		EnableFallback: aws.FalseTernary,
		HTTPClient:     opt.HTTPClient,
	})
	dctx, cancel := context.WithTimeout(ctx, cfg.MoveTimeout)
	defer cancel()
	id, err := Discover(dctx, meta, cfg, opt.InterfaceMAC)
	if err != nil {
		return nil, fmt.Errorf("ec2 mover: %w", err)
	}
	loadOpts := []func(*config.LoadOptions) error{
		config.WithRegion(id.Region),
		// The mover retries by itself: it knows the move's deadline and
		// must not stall in the SDK's client-side retry quota.
		config.WithRetryer(func() aws.Retryer { return aws.NopRetryer{} }),
	}
	if opt.Credentials != nil {
		loadOpts = append(loadOpts, config.WithCredentialsProvider(opt.Credentials))
	}
	if opt.HTTPClient != nil {
		loadOpts = append(loadOpts, config.WithHTTPClient(opt.HTTPClient))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, loadOpts...)
	if err != nil {
		return nil, fmt.Errorf("ec2 mover: load AWS configuration: %w", err)
	}
	client := ec2.NewFromConfig(awsCfg, func(o *ec2.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
		if opt.ObserveCall != nil {
			o.APIOptions = append(o.APIOptions, observeCalls(opt.ObserveCall))
		}
	})
	return newWithClients(cfg, id, client, meta, local, opt.Logger, opt.Clock)
}

// Discover fills in the instance ID, region and ENI that cfg leaves empty
// from the metadata service: the identity document, then the ENI of
// cfg.Interface's MAC (or of the primary interface).
func Discover(ctx context.Context, meta MetadataAPI, cfg EC2Config, interfaceMAC func(string) (net.HardwareAddr, error)) (Identity, error) {
	id := Identity{InstanceID: cfg.InstanceID, Region: cfg.Region, ENI: cfg.ENI}
	if id.InstanceID == "" || id.Region == "" {
		doc, err := meta.GetInstanceIdentityDocument(ctx, &imds.GetInstanceIdentityDocumentInput{})
		if err != nil {
			return id, fmt.Errorf("read the instance identity document from IMDS: %w", err)
		}
		if id.InstanceID == "" {
			id.InstanceID = doc.InstanceID
		}
		if id.Region == "" {
			id.Region = doc.Region
		}
	}
	if !strings.HasPrefix(id.InstanceID, "i-") {
		return id, fmt.Errorf("IMDS gave instance ID %q, not i-...", id.InstanceID)
	}
	if id.Region == "" {
		return id, errors.New("IMDS gave no region")
	}
	switch {
	case id.ENI != "":
		// The MAC, for the metadata check, is learned from Describe: the
		// interface's MAC might belong to another ENI.
	case cfg.Interface != "":
		if interfaceMAC == nil {
			interfaceMAC = func(name string) (net.HardwareAddr, error) {
				ifi, err := net.InterfaceByName(name)
				if err != nil {
					return nil, err
				}
				return ifi.HardwareAddr, nil
			}
		}
		hw, err := interfaceMAC(cfg.Interface)
		if err != nil {
			return id, fmt.Errorf("MAC address of %s: %w", cfg.Interface, err)
		}
		if len(hw) != 6 {
			return id, fmt.Errorf("interface %s has no Ethernet MAC address", cfg.Interface)
		}
		id.MAC = hw.String()
	default:
		mac, err := readMetadata(ctx, meta, "mac")
		if err != nil {
			return id, err
		}
		id.MAC = mac
	}
	if id.ENI == "" {
		eni, err := readMetadata(ctx, meta, "network/interfaces/macs/"+id.MAC+"/interface-id")
		if err != nil {
			return id, fmt.Errorf("find the ENI of MAC %s (is the interface an ENI of this instance?): %w", id.MAC, err)
		}
		if !strings.HasPrefix(eni, "eni-") {
			return id, fmt.Errorf("IMDS gave ENI %q for MAC %s, not eni-...", eni, id.MAC)
		}
		id.ENI = eni
	}
	return id, nil
}

// metadataLimit bounds what the mover reads from one metadata path.
const metadataLimit = 64 << 10

// readMetadata returns one metadata value, trimmed.
func readMetadata(ctx context.Context, meta MetadataAPI, path string) (string, error) {
	out, err := meta.GetMetadata(ctx, &imds.GetMetadataInput{Path: path})
	if err != nil {
		if httpStatus(err) == 404 {
			return "", &metadataMissingError{path: path}
		}
		return "", fmt.Errorf("read %s from IMDS: %w", path, err)
	}
	if out == nil || out.Content == nil {
		return "", fmt.Errorf("read %s from IMDS: empty response", path)
	}
	defer out.Content.Close()
	b, err := io.ReadAll(io.LimitReader(out.Content, metadataLimit))
	if err != nil {
		return "", fmt.Errorf("read %s from IMDS: %w", path, err)
	}
	return strings.TrimSpace(string(b)), nil
}

// metadataMissingError is IMDS answering 404: the key does not exist
// (for some keys, such as ipv6s, that means "none").
type metadataMissingError struct{ path string }

func (e *metadataMissingError) Error() string { return "IMDS has no " + e.path }

// parseAddrList parses IMDS's newline-separated address lists, skipping
// anything that is not an address.
func parseAddrList(s string) map[netip.Addr]bool {
	out := map[netip.Addr]bool{}
	for _, f := range strings.Fields(s) {
		if a, err := netip.ParseAddr(f); err == nil {
			out[a] = true
		}
	}
	return out
}

// observeCalls times each EC2 operation from the start of the SDK's
// handler stack, so the figure includes signing and the HTTP round trip.
func observeCalls(observe func(op string, took time.Duration, err error)) func(*middleware.Stack) error {
	return func(st *middleware.Stack) error {
		return st.Initialize.Add(middleware.InitializeMiddlewareFunc("DirectorObserveCall",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				start := time.Now()
				out, md, err := next.HandleInitialize(ctx, in)
				observe(awsmiddleware.GetOperationName(ctx), time.Since(start), err)
				return out, md, err
			}), middleware.Before)
	}
}
