#!/usr/bin/python3
"""A small client of the Kubernetes CRI v1 runtime API, enough to run and tear down a
pod sandbox the way the kubelet does, plus a builder for a local sandbox ("pause")
image. Debian has no crictl; this needs only python3-grpcio. Protobuf messages are
encoded by hand: the few fields used are listed with their CRI field numbers.

  cri.py image OUT.tar ROOTFS NAME     write an OCI image archive
  cri.py run SOCKET NAME UID NAMESPACE print the new sandbox's ID
  cri.py ip SOCKET ID                  print the sandbox's IP
  cri.py stop SOCKET ID | remove SOCKET ID
  cri.py cycle SOCKET NAME UID NAMESPACE [node]
                                       run, stop and remove one sandbox (in the node's
                                       network with `node`); print the milliseconds
                                       the three calls took
"""

import hashlib
import io
import json
import sys
import tarfile


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field(number, payload):
    """A length-delimited field (strings, bytes, nested messages)."""
    if isinstance(payload, str):
        payload = payload.encode()
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def parse(buf):
    """Top-level fields of a message: {number: [raw values]}."""
    out, i = {}, 0
    while i < len(buf):
        key, i = read_varint(buf, i)
        number, kind = key >> 3, key & 7
        if kind == 0:
            value, i = read_varint(buf, i)
        elif kind == 2:
            size, i = read_varint(buf, i)
            value, i = buf[i:i + size], i + size
        elif kind == 1:
            value, i = buf[i:i + 8], i + 8
        elif kind == 5:
            value, i = buf[i:i + 4], i + 4
        else:
            raise ValueError(f"wire type {kind}")
        out.setdefault(number, []).append(value)
    return out


def read_varint(buf, i):
    n = shift = 0
    while True:
        b = buf[i]
        i += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return n, i


def call(socket, method, request, channel=None):
    import grpc
    if channel is None:
        with grpc.insecure_channel(f"unix://{socket}") as channel:
            return call(socket, method, request, channel)
    rpc = channel.unary_unary(
        f"/runtime.v1.RuntimeService/{method}",
        request_serializer=lambda b: b,
        response_deserializer=lambda b: b,
    )
    return rpc(request, timeout=120)


def sandbox_config(name, uid, namespace, node=False):
    # PodSandboxMetadata: name 1, uid 2, namespace 3. PodSandboxConfig: metadata 1,
    # hostname 2, linux 8 -> LinuxPodSandboxConfig.security_context 2 ->
    # LinuxSandboxSecurityContext.namespace_options 1 -> NamespaceOption.network 1
    # (a varint: NODE is 2). RunPodSandboxRequest: config 1.
    metadata = field(1, name) + field(2, uid) + field(3, namespace)
    config = field(1, metadata)
    if node:
        # As the kubelet: no hostname for a pod in the node's network (no UTS namespace).
        namespaces = varint(1 << 3 | 0) + varint(2)
        config += field(8, field(2, field(1, namespaces)))
    else:
        config += field(2, name)
    return field(1, config)


def run(socket, name, uid, namespace):
    reply = parse(call(socket, "RunPodSandbox", sandbox_config(name, uid, namespace)))
    print(reply[1][0].decode())  # RunPodSandboxResponse.pod_sandbox_id


def cycle(socket, name, uid, namespace, mode="pod"):
    """What the kubelet does for a pod's life, minus the containers: the time of the
    three calls alone (not python's start or grpc's import) on one channel."""
    import grpc
    import time
    with grpc.insecure_channel(f"unix://{socket}") as channel:
        grpc.channel_ready_future(channel).result(timeout=20)
        start = time.monotonic()
        reply = parse(call(socket, "RunPodSandbox", sandbox_config(name, uid, namespace, mode == "node"), channel))
        sandbox = field(1, reply[1][0])
        try:
            call(socket, "StopPodSandbox", sandbox, channel)
        finally:
            call(socket, "RemovePodSandbox", sandbox, channel)
        print(f"{(time.monotonic() - start) * 1000:.3f}")


def ip(socket, sandbox):
    # PodSandboxStatusResponse.status 1 -> PodSandboxStatus.network 5 -> .ip 1
    status = parse(parse(call(socket, "PodSandboxStatus", field(1, sandbox)))[1][0])
    network = parse(status[5][0]) if 5 in status else {}
    print(network[1][0].decode() if 1 in network else "")


def image(out, rootfs, name):
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w") as t:
        t.add(rootfs, arcname=".")
    layer = layer.getvalue()
    digest = lambda b: "sha256:" + hashlib.sha256(b).hexdigest()
    config = json.dumps({
        "architecture": "amd64", "os": "linux",
        "config": {"Entrypoint": ["/bin/sleep", "100000000"]},
        "rootfs": {"type": "layers", "diff_ids": [digest(layer)]},
    }).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest(config), "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest(layer), "size": len(layer)}],
    }).encode()
    index = json.dumps({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest(manifest), "size": len(manifest),
        "annotations": {"io.containerd.image.name": name, "org.opencontainers.image.ref.name": name.rsplit(":", 1)[-1]},
    }]}).encode()
    with tarfile.open(out, "w") as t:
        def add(path, data):
            info = tarfile.TarInfo(path)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
        add("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        add("index.json", index)
        for blob in (layer, config, manifest):
            add("blobs/sha256/" + digest(blob)[7:], blob)


if __name__ == "__main__":
    verb, args = sys.argv[1], sys.argv[2:]
    if verb == "image":
        image(*args)
    elif verb == "run":
        run(*args)
    elif verb == "cycle":
        cycle(*args)
    elif verb == "ip":
        ip(*args)
    elif verb in ("stop", "remove"):
        call(args[0], "StopPodSandbox" if verb == "stop" else "RemovePodSandbox", field(1, args[1]))
    else:
        sys.exit(__doc__)
