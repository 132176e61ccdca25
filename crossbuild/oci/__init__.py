"""OCI registries: a small Distribution API v2 client, stdlib only, one module per concern.

    reference.py   the reference grammar (`[registry/]repository[:tag][@digest]`)
    mediatypes.py  manifest and index media types, the Manifest as served
    errors.py      RegistryError and its kinds (Unreachable, NotFound, Denied, CorruptContent)
    auth.py        WWW-Authenticate, docker's config.json and credential helpers, tokens
    transport.py   HTTP(S), insecure hosts, proxies, redirects, retries with backoff
    client.py      the Client: manifests, tags, streamed and digest-checked blobs
    index.py       index entries, attestations, the platforms of a tag
    layers.py      reading one file out of an image's layers
    upload.py      blob uploads (monolithic or chunked), mounts, parallel pushes

Host names (loopback, Docker Hub's API host) are crossbuild.hosts; platform spellings are
crossbuild.platforms.
"""

from crossbuild.oci.auth import Challenge, Credentials, docker_config_path, docker_credentials, parse_www_authenticate
from crossbuild.oci.client import CHUNK_SIZE, Client
from crossbuild.oci.errors import CorruptContent, Denied, NotFound, RegistryError, SpeaksPlainHTTP, Unreachable
from crossbuild.oci.index import (
    ATTESTATION_ANNOTATION,
    ATTESTATION_MANIFEST,
    PlatformEntry,
    image_entries,
    image_for_platform,
    index_entries,
    platforms_of,
)
from crossbuild.oci.layers import extract_file
from crossbuild.oci.mediatypes import (
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    IMAGE_MANIFEST_TYPES,
    INDEX_MEDIA_TYPES,
    MANIFEST_MEDIA_TYPES,
    OCI_INDEX,
    OCI_MANIFEST,
    Manifest,
    is_compressed,
    is_index,
)
from crossbuild.oci.reference import InvalidReference, Reference, parse_reference
from crossbuild.oci.transport import RetryPolicy
from crossbuild.oci.upload import BlobUploader, push_all

__all__ = [
    "ATTESTATION_ANNOTATION",
    "ATTESTATION_MANIFEST",
    "CHUNK_SIZE",
    "DOCKER_MANIFEST",
    "DOCKER_MANIFEST_LIST",
    "IMAGE_MANIFEST_TYPES",
    "INDEX_MEDIA_TYPES",
    "MANIFEST_MEDIA_TYPES",
    "OCI_INDEX",
    "OCI_MANIFEST",
    "BlobUploader",
    "Challenge",
    "Client",
    "CorruptContent",
    "Credentials",
    "Denied",
    "InvalidReference",
    "Manifest",
    "NotFound",
    "PlatformEntry",
    "Reference",
    "RegistryError",
    "RetryPolicy",
    "SpeaksPlainHTTP",
    "Unreachable",
    "docker_config_path",
    "docker_credentials",
    "extract_file",
    "image_entries",
    "image_for_platform",
    "index_entries",
    "is_compressed",
    "is_index",
    "parse_reference",
    "parse_www_authenticate",
    "platforms_of",
    "push_all",
]
