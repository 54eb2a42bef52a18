// Command vcsim serves govmomi's vCenter simulator on 127.0.0.1 for nsxt-upgrade's tests.
//
// It builds offline from Debian's golang-github-vmware-govmomi-dev:
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go build -o vcsim ./tests/vcsim
//
// The inventory is built through the vSphere API (as an administrator would), either
// from counts (-clusters, -hosts, -vms) with vcsim-style names (DC0_C0, DC0_C0_H0,
// DC0_C0_H0_VM0) or from a JSON file (-spec) naming everything:
//
//	{"datacenter": "dc-1",
//	 "clusters": [{"name": "cluster-a", "drs": "manual",
//	               "hosts": [{"name": "esx-01", "vms": ["web-1", {"name": "db-1", "powered_on": false}]}]}]}
//
// ("id" is accepted for "name" on hosts, so an inventory's compute section can be passed as is.)
//
// It listens on -listen (default 127.0.0.1:0) or -port N on 127.0.0.1; port 0 picks a free
// port. TLS uses a throwaway CA, written as PEM to -cert-out. Only -username/-password can
// log in. The first stdout line is the SDK URL (https://127.0.0.1:PORT/sdk, without
// credentials), printed once the inventory is ready. The server stops on SIGINT/SIGTERM or,
// with -exit-on-stdin-eof, when stdin reaches EOF, so it never outlives the test process
// that started it.
//
// Test control: POST /vcsim/task with form fields entity (a host or VM name), op (e.g.
// enterMaintenanceMode), state (queued|running|success|error) and message creates a task
// on that entity the way another client or an earlier process would have; with task=<key>
// it changes that task's state instead. The answer is {"task": "<key>"}. vcsim runs its own
// tasks synchronously, so this is how tests get a task that is still in flight or failed.
//
// DRS: in a cluster whose DRS is enabled and fully automated, entering maintenance mode first
// moves the host's powered-on VMs to the other hosts of its cluster that are not in maintenance
// mode (the least loaded first), as vCenter's DRS does; when they have nowhere to go the task
// fails and the host stays out of maintenance mode. (vcsim alone only sets the flag.)
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"io/ioutil"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

type vmSpec struct {
	Name      string `json:"name"`
	PoweredOn bool   `json:"powered_on"`
}

// UnmarshalJSON accepts "name" (powered on) or {"name": ..., "powered_on": ...}.
func (v *vmSpec) UnmarshalJSON(b []byte) error {
	var name string
	if err := json.Unmarshal(b, &name); err == nil {
		*v = vmSpec{Name: name, PoweredOn: true}
		return nil
	}
	type plain vmSpec
	p := plain{PoweredOn: true}
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	*v = vmSpec(p)
	return nil
}

type hostSpec struct {
	Name string   `json:"name"`
	ID   string   `json:"id"`
	VMs  []vmSpec `json:"vms"`
}

type clusterSpec struct {
	Name  string     `json:"name"`
	DRS   string     `json:"drs"` // fully_automated | manual | partially_automated | off
	Hosts []hostSpec `json:"hosts"`
}

type inventorySpec struct {
	Datacenter string        `json:"datacenter"`
	Clusters   []clusterSpec `json:"clusters"`
}

func generatedSpec(clusters, hosts, vms int, drs string) inventorySpec {
	spec := inventorySpec{Datacenter: "DC0"}
	for c := 0; c < clusters; c++ {
		cs := clusterSpec{Name: fmt.Sprintf("DC0_C%d", c), DRS: drs}
		for h := 0; h < hosts; h++ {
			hs := hostSpec{Name: fmt.Sprintf("%s_H%d", cs.Name, h)}
			for v := 0; v < vms; v++ {
				hs.VMs = append(hs.VMs, vmSpec{Name: fmt.Sprintf("%s_VM%d", hs.Name, v), PoweredOn: true})
			}
			cs.Hosts = append(cs.Hosts, hs)
		}
		spec.Clusters = append(spec.Clusters, cs)
	}
	return spec
}

func setDRS(ref types.ManagedObjectReference, mode string) error {
	cluster := simulator.Map.Get(ref).(*simulator.ClusterComputeResource)
	cfg := cluster.ConfigurationEx.(*types.ClusterConfigInfoEx)
	enabled := true
	var behavior types.DrsBehavior
	switch mode {
	case "", "fully_automated":
		behavior = types.DrsBehaviorFullyAutomated
	case "manual":
		behavior = types.DrsBehaviorManual
	case "partially_automated":
		behavior = types.DrsBehaviorPartiallyAutomated
	case "off":
		enabled, behavior = false, types.DrsBehaviorFullyAutomated
	default:
		return fmt.Errorf("cluster %s: unknown drs %q", cluster.Name, mode)
	}
	simulator.Map.WithLock(cluster, func() {
		cfg.DrsConfig.Enabled = types.NewBool(enabled)
		cfg.DrsConfig.DefaultVmBehavior = behavior
	})
	return nil
}

// build creates the datacenter, clusters, hosts, a datastore shared by all hosts and the VMs.
func build(ctx context.Context, c *govmomi.Client, spec inventorySpec, dsDir string) error {
	if spec.Datacenter == "" {
		spec.Datacenter = "DC0"
	}
	dc, err := object.NewRootFolder(c.Client).CreateDatacenter(ctx, spec.Datacenter)
	if err != nil {
		return err
	}
	folders, err := dc.Folders(ctx)
	if err != nil {
		return err
	}
	type placement struct {
		host *object.HostSystem
		pool *object.ResourcePool
		vms  []vmSpec
	}
	var placements []placement
	for _, cs := range spec.Clusters {
		cluster, err := folders.HostFolder.CreateCluster(ctx, cs.Name, types.ClusterConfigSpecEx{})
		if err != nil {
			return fmt.Errorf("cluster %s: %v", cs.Name, err)
		}
		if err := setDRS(cluster.Reference(), cs.DRS); err != nil {
			return err
		}
		pool, err := cluster.ResourcePool(ctx)
		if err != nil {
			return err
		}
		for _, hs := range cs.Hosts {
			name := hs.Name
			if name == "" {
				name = hs.ID
			}
			task, err := cluster.AddHost(ctx, types.HostConnectSpec{HostName: name}, true, nil, nil)
			if err != nil {
				return fmt.Errorf("host %s: %v", name, err)
			}
			info, err := task.WaitForResult(ctx, nil)
			if err != nil {
				return fmt.Errorf("host %s: %v", name, err)
			}
			host := object.NewHostSystem(c.Client, info.Result.(types.ManagedObjectReference))
			dss, err := host.ConfigManager().DatastoreSystem(ctx)
			if err != nil {
				return err
			}
			if _, err := dss.CreateLocalDatastore(ctx, "LocalDS_0", dsDir); err != nil {
				return fmt.Errorf("datastore on %s: %v", name, err)
			}
			placements = append(placements, placement{host, pool, hs.VMs})
		}
	}
	for _, p := range placements {
		for _, v := range p.vms {
			config := types.VirtualMachineConfigSpec{
				Name:    v.Name,
				GuestId: string(types.VirtualMachineGuestOsIdentifierOtherGuest),
				Files:   &types.VirtualMachineFileInfo{VmPathName: "[LocalDS_0]"},
			}
			task, err := folders.VmFolder.CreateVM(ctx, config, p.pool, p.host)
			if err != nil {
				return fmt.Errorf("vm %s: %v", v.Name, err)
			}
			info, err := task.WaitForResult(ctx, nil)
			if err != nil {
				return fmt.Errorf("vm %s: %v", v.Name, err)
			}
			if v.PoweredOn {
				vm := object.NewVirtualMachine(c.Client, info.Result.(types.ManagedObjectReference))
				task, err := vm.PowerOn(ctx)
				if err == nil {
					err = task.Wait(ctx)
				}
				if err != nil {
					return fmt.Errorf("power on %s: %v", v.Name, err)
				}
			}
		}
	}
	return nil
}

// drsEvacuator evacuates hosts entering maintenance mode in fully automated DRS clusters: it wraps
// the Execute of every enterMaintenanceMode task vcsim creates (see the package comment).
type drsEvacuator struct{ self types.ManagedObjectReference }

func (d *drsEvacuator) Reference() types.ManagedObjectReference           { return d.self }
func (d *drsEvacuator) UpdateObject(mo.Reference, []types.PropertyChange) {}
func (d *drsEvacuator) RemoveObject(types.ManagedObjectReference)         {}
func (d *drsEvacuator) PutObject(obj mo.Reference) {
	task, ok := obj.(*simulator.Task)
	if !ok || task.Execute == nil || task.Info.DescriptionId != "HostSystem.enterMaintenanceMode" {
		return
	}
	inner := task.Execute
	task.Execute = func(t *simulator.Task) (types.AnyType, types.BaseMethodFault) {
		if host, ok := simulator.Map.Get(*t.Info.Entity).(*simulator.HostSystem); ok {
			if fault := evacuate(host); fault != nil {
				return nil, fault
			}
		}
		return inner(t)
	}
}

// evacuate moves host's powered-on VMs to the least loaded other hosts of its cluster that are
// not in maintenance mode, when the cluster's DRS is enabled and fully automated.
func evacuate(host *simulator.HostSystem) types.BaseMethodFault {
	if host.Parent == nil {
		return nil
	}
	cluster, ok := simulator.Map.Get(*host.Parent).(*simulator.ClusterComputeResource)
	if !ok {
		return nil
	}
	cfg, ok := cluster.ConfigurationEx.(*types.ClusterConfigInfoEx)
	if !ok || cfg.DrsConfig.Enabled == nil || !*cfg.DrsConfig.Enabled ||
		cfg.DrsConfig.DefaultVmBehavior != types.DrsBehaviorFullyAutomated {
		return nil
	}
	load := map[types.ManagedObjectReference]int{}
	for _, ref := range cluster.Host {
		if other, ok := simulator.Map.Get(ref).(*simulator.HostSystem); ok &&
			ref != host.Self && !other.Runtime.InMaintenanceMode {
			load[ref] = 0
		}
	}
	var running []*simulator.VirtualMachine
	for _, e := range simulator.Map.All("VirtualMachine") {
		vm := e.(*simulator.VirtualMachine)
		if vm.Runtime.Host == nil || vm.Runtime.PowerState != types.VirtualMachinePowerStatePoweredOn {
			continue
		}
		if _, ok := load[*vm.Runtime.Host]; ok {
			load[*vm.Runtime.Host]++
		} else if *vm.Runtime.Host == host.Self {
			running = append(running, vm)
		}
	}
	if len(running) > 0 && len(load) == 0 {
		return &types.InsufficientResourcesFault{}
	}
	for _, vm := range running {
		var best *types.ManagedObjectReference
		for ref := range load {
			ref := ref
			if best == nil || load[ref] < load[*best] || (load[ref] == load[*best] && ref.Value < best.Value) {
				best = &ref
			}
		}
		load[*best]++
		simulator.Map.Update(vm, []types.PropertyChange{
			{Name: "runtime.host", Val: *best},
			{Name: "summary.runtime.host", Val: *best},
		})
		log.Printf("drs: moved %s from %s to %s", vm.Name, host.Name, best.Value)
	}
	return nil
}

func findEntity(name string) mo.Entity {
	for _, kind := range []string{"HostSystem", "VirtualMachine", "ClusterComputeResource"} {
		for _, e := range simulator.Map.All(kind) {
			if e.Entity().Name == name {
				return e
			}
		}
	}
	return nil
}

// taskControl serves POST /vcsim/task (see the package comment).
func taskControl(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	state := types.TaskInfoState(r.FormValue("state"))
	switch state {
	case types.TaskInfoStateQueued, types.TaskInfoStateRunning, types.TaskInfoStateSuccess, types.TaskInfoStateError:
	default:
		http.Error(w, "state must be queued, running, success or error", http.StatusBadRequest)
		return
	}
	var task *simulator.Task
	if key := r.FormValue("task"); key != "" {
		obj, ok := simulator.Map.Get(types.ManagedObjectReference{Type: "Task", Value: key}).(*simulator.Task)
		if !ok {
			http.Error(w, "no task "+key, http.StatusNotFound)
			return
		}
		task = obj
	} else {
		entity := findEntity(r.FormValue("entity"))
		op := r.FormValue("op")
		if entity == nil || op == "" {
			http.Error(w, "need an existing entity and an op", http.StatusBadRequest)
			return
		}
		task = simulator.CreateTask(entity, op, nil)
	}
	changes := []types.PropertyChange{{Name: "info.state", Val: state}}
	now := time.Now()
	switch state {
	case types.TaskInfoStateRunning:
		changes = append(changes, types.PropertyChange{Name: "info.startTime", Val: now})
	case types.TaskInfoStateError:
		fault := types.LocalizedMethodFault{Fault: &types.SystemError{Reason: r.FormValue("message")},
			LocalizedMessage: r.FormValue("message")}
		changes = append(changes, types.PropertyChange{Name: "info.error", Val: fault},
			types.PropertyChange{Name: "info.completeTime", Val: now})
	case types.TaskInfoStateSuccess:
		changes = append(changes, types.PropertyChange{Name: "info.completeTime", Val: now})
	}
	simulator.Map.WithLock(task, func() { simulator.Map.Update(task, changes) })
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]string{"task": task.Self.Value})
}

// newCertificates makes a throwaway CA and a server certificate it signs, for 127.0.0.1, ::1
// and localhost (vcsim's built-in certificate has a 1024-bit key, which OpenSSL 3 rejects).
func newCertificates() (tls.Certificate, []byte, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	now := time.Now()
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "nsxt-upgrade vcsim test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(7 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(7 * 24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1"), net.IPv6loopback},
		DNSNames:    []string{"localhost"},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, ca, &key.PublicKey, caKey)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	cert := tls.Certificate{Certificate: [][]byte{leafDER, caDER}, PrivateKey: key}
	return cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), nil
}

func main() {
	log.SetFlags(log.LstdFlags | log.Lmicroseconds)
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on (port 0 picks a free port)")
	port := flag.Int("port", -1, "shorthand for -listen 127.0.0.1:PORT (0 picks a free port)")
	username := flag.String("username", "user", "the only user name that can log in")
	password := flag.String("password", "pass", "that user's password")
	specFile := flag.String("spec", "", "JSON inventory (overrides -clusters/-hosts/-vms/-drs)")
	clusters := flag.Int("clusters", 1, "clusters in the datacenter")
	hosts := flag.Int("hosts", 3, "hosts per cluster")
	vms := flag.Int("vms", 2, "powered-on VMs per host")
	drs := flag.String("drs", "manual", "DRS of generated clusters: fully_automated|manual|partially_automated|off")
	certOut := flag.String("cert-out", "", "write the CA certificate (PEM) that signed the server's here")
	stdinEOF := flag.Bool("exit-on-stdin-eof", false, "stop when stdin reaches EOF (the parent went away)")
	flag.Parse()

	spec := generatedSpec(*clusters, *hosts, *vms, *drs)
	if *specFile != "" {
		data, err := ioutil.ReadFile(*specFile)
		if err == nil {
			spec = inventorySpec{}
			err = json.Unmarshal(data, &spec)
		}
		if err != nil {
			log.Fatalf("spec %s: %v", *specFile, err)
		}
	}
	if *port >= 0 {
		*listen = net.JoinHostPort("127.0.0.1", strconv.Itoa(*port))
	}
	if _, _, err := net.SplitHostPort(*listen); err != nil {
		log.Fatalf("-listen %s: %v", *listen, err)
	}

	model := simulator.VPX()
	model.Datacenter, model.Portgroup, model.Host, model.Cluster = 0, 0, 0, 0
	model.ClusterHost, model.Datastore, model.Machine = 0, 0, 0
	if err := model.Create(); err != nil {
		log.Fatal(err)
	}
	defer model.Remove()
	dsDir, err := ioutil.TempDir("", "nsxt-upgrade-vcsim-ds-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dsDir)

	model.Service.Listen = &url.URL{Host: *listen, User: url.UserPassword(*username, *password)}
	cert, caPEM, err := newCertificates()
	if err != nil {
		log.Fatal(err)
	}
	model.Service.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	model.Service.HandleFunc("/vcsim/task", taskControl)
	simulator.Map.AddHandler(&drsEvacuator{types.ManagedObjectReference{Type: "NsxtUpgradeDrs", Value: "drs-0"}})
	server := model.Service.NewServer()
	defer server.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	client, err := govmomi.NewClient(ctx, server.URL, true)
	if err == nil {
		err = build(ctx, client, spec, dsDir)
		_ = client.Logout(ctx)
	}
	cancel()
	if err != nil {
		log.Fatalf("building the inventory: %v", err)
	}
	if *certOut != "" {
		if err := ioutil.WriteFile(*certOut, caPEM, 0o644); err != nil {
			log.Fatal(err)
		}
	}

	public := *server.URL
	public.User = nil
	fmt.Println(public.String())
	_ = os.Stdout.Sync()
	log.Printf("vcsim listening on %s (%d clusters), login %s", public.String(),
		len(spec.Clusters), strconv.Quote(*username))

	done := make(chan os.Signal, 1)
	signal.Notify(done, syscall.SIGINT, syscall.SIGTERM)
	if *stdinEOF {
		go func() {
			_, _ = io.Copy(ioutil.Discard, os.Stdin)
			done <- syscall.SIGHUP
		}()
	}
	sig := <-done
	log.Printf("vcsim stopping (%v)", sig)
}
