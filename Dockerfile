# The fetch-mode image: only the static entrypoint and CA certificates. At start it fetches the
# server from S3 (IMGBUILD_FETCH), verifies it (IMGBUILD_SHA256) and runs it as PID 1's child.
#
# FROM scratch: nothing is pulled, so this builds on an engine without registry access.
#   scripts/build-entrypoint.sh
#   cp /etc/ssl/certs/ca-certificates.crt target/ca-certificates.crt
#   docker build -t server-fetch .
#   docker run -e IMGBUILD_FETCH=s3://my-bucket/server -e IMGBUILD_SHA256=<hex> server-fetch
# (.dockerignore sends only these two files as the build context.)
FROM scratch
COPY target/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY target/x86_64-unknown-linux-musl/entrypoint/imgbuild-entrypoint /imgbuild-entrypoint
ENTRYPOINT ["/imgbuild-entrypoint"]
