#!/usr/bin/env bash
# Build the Lambda image of every VidLuxe function, push it to ECR, and print its digest-pinned URI,
# the value `npx osls deploy --stage STAGE --param="image=URI"` takes.
#   infra/aws/push-image.sh STAGE [REGION]
# Needs docker (with buildx) and the AWS CLI with credentials for the target account.
set -euo pipefail
stage=${1:?usage: infra/aws/push-image.sh STAGE [REGION]}
region=${2:-${AWS_REGION:-us-east-1}}
cd "$(dirname "$0")/../.."

account=$(aws sts get-caller-identity --query Account --output text)
registry="$account.dkr.ecr.$region.amazonaws.com"
repository="vidluxe-$stage"
aws ecr describe-repositories --region "$region" --repository-names "$repository" >/dev/null 2>&1 \
  || aws ecr create-repository --region "$region" --repository-name "$repository" \
       --image-scanning-configuration scanOnPush=true >/dev/null
aws ecr get-login-password --region "$region" | docker login --username AWS --password-stdin "$registry" >&2

tag="$(git rev-parse --short HEAD)$(git diff --quiet || echo -dirty)"
# --provenance=false: Lambda takes a single-platform image manifest, not an index with attestations.
docker build --platform linux/amd64 --provenance=false -f infra/aws/Dockerfile -t "$registry/$repository:$tag" . >&2
docker push "$registry/$repository:$tag" >&2
digest=$(aws ecr describe-images --region "$region" --repository-name "$repository" \
  --image-ids imageTag="$tag" --query 'imageDetails[0].imageDigest' --output text)
echo "$registry/$repository@$digest"
