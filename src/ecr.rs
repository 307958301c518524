//! ECR: registry-host recognition, credentials from GetAuthorizationToken (aws-sdk-ecr), and
//! repository creation.
