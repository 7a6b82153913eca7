//! EKS access without kubectl or a kubeconfig file: the function's IAM role (mapped by an EKS access entry) is
//! the identity.
//!
//! - endpoint and CA from `eks:DescribeCluster`;
//! - bearer token = `k8s-aws-v1.` + base64url(no padding) of a presigned STS `GetCallerIdentity` URL, signed with
//!   SigV4 in the query string, `x-k8s-aws-id: <cluster>` among the signed headers, `X-Amz-Expires=60`; the API
//!   server accepts it for 15 minutes from `X-Amz-Date`, so a token is reused for at most 14;
//! - a `kube::Client` built from an in-memory kubeconfig (the CA stays the base64 PEM EKS returns).

use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use aws_credential_types::Credentials;
use aws_credential_types::provider::ProvideCredentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign};
use aws_sigv4::sign::v4;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use kube::config::{
    AuthInfo, Cluster, Context, KubeConfigOptions, Kubeconfig, NamedAuthInfo, NamedCluster, NamedContext,
};

/// Lifetime the agent gives a token (the API server allows 15 minutes).
pub const TOKEN_REUSE: Duration = Duration::from_secs(14 * 60);
const PRESIGN_EXPIRES: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum EksError {
    #[error("describe cluster {0}: {1}")]
    Describe(String, String),
    #[error("cluster {0} has no {1}")]
    Incomplete(String, &'static str),
    #[error("credentials: {0}")]
    Credentials(String),
    #[error("signing the token: {0}")]
    Signing(String),
    #[error("kube config: {0}")]
    Config(String),
}

/// A bearer token for the cluster, from the given credentials and time.
pub fn token(creds: &Credentials, region: &str, cluster: &str, at: SystemTime) -> Result<String, EksError> {
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(PRESIGN_EXPIRES);
    let identity = creds.clone().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("sts")
        .time(at)
        .settings(settings)
        .build()
        .map_err(|e| EksError::Signing(e.to_string()))?;
    let base = format!("https://sts.{region}.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15");
    let req =
        SignableRequest::new("GET", base.as_str(), [("x-k8s-aws-id", cluster)].into_iter(), SignableBody::Bytes(&[]))
            .map_err(|e| EksError::Signing(e.to_string()))?;
    let (instructions, _) = sign(req, &params.into()).map_err(|e| EksError::Signing(e.to_string()))?.into_parts();
    let mut url = base;
    for (k, v) in instructions.params() {
        url.push('&');
        url.push_str(k);
        url.push('=');
        url.push_str(&percent_encode(v));
    }
    Ok(format!("k8s-aws-v1.{}", URL_SAFE_NO_PAD.encode(url)))
}

/// RFC 3986 unreserved characters pass; everything else is %XX (as SigV4 query encoding).
fn percent_encode(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// What DescribeCluster returns that a client needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterInfo {
    pub name: String,
    pub endpoint: String,
    /// Base64 of the PEM CA bundle, as EKS returns it.
    pub ca_data: String,
}

/// Reads endpoint and CA of a cluster.
pub async fn describe(eks: &aws_sdk_eks::Client, name: &str) -> Result<ClusterInfo, EksError> {
    let out = eks
        .describe_cluster()
        .name(name)
        .send()
        .await
        .map_err(|e| EksError::Describe(name.to_owned(), aws_sdk_eks::error::DisplayErrorContext(e).to_string()))?;
    let c = out.cluster.ok_or(EksError::Incomplete(name.to_owned(), "description"))?;
    Ok(ClusterInfo {
        name: name.to_owned(),
        endpoint: c.endpoint.ok_or(EksError::Incomplete(name.to_owned(), "endpoint"))?,
        ca_data: c
            .certificate_authority
            .and_then(|a| a.data)
            .ok_or(EksError::Incomplete(name.to_owned(), "certificate authority"))?,
    })
}

/// A kube configuration for the cluster with `token` as bearer, built from an in-memory kubeconfig.
pub async fn kube_config(info: &ClusterInfo, token: &str) -> Result<kube::Config, EksError> {
    // The AWS SDK brings aws-lc-rs and kube brings ring: rustls needs to be told which one to use.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let kc = Kubeconfig {
        clusters: vec![NamedCluster {
            name: info.name.clone(),
            cluster: Some(Cluster {
                server: Some(info.endpoint.clone()),
                certificate_authority_data: (!info.ca_data.is_empty()).then(|| info.ca_data.clone()),
                ..Default::default()
            }),
            other: Default::default(),
        }],
        auth_infos: vec![NamedAuthInfo {
            name: "dreamops".into(),
            auth_info: Some(AuthInfo { token: Some(token.to_owned().into()), ..Default::default() }),
            other: Default::default(),
        }],
        contexts: vec![NamedContext {
            name: info.name.clone(),
            context: Some(Context { cluster: info.name.clone(), user: Some("dreamops".into()), ..Default::default() }),
            other: Default::default(),
        }],
        current_context: Some(info.name.clone()),
        ..Default::default()
    };
    kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .map_err(|e| EksError::Config(e.to_string()))
}

/// Hands out kube clients for one cluster, with a token renewed before it expires. Built once per function;
/// nothing is called until the first client is asked for.
pub struct EksAccess {
    eks: aws_sdk_eks::Client,
    credentials: aws_credential_types::provider::SharedCredentialsProvider,
    region: String,
    cluster: String,
    cached: Mutex<Option<(kube::Client, Instant)>>,
}

impl std::fmt::Debug for EksAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EksAccess")
            .field("cluster", &self.cluster)
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

impl EksAccess {
    pub fn new(sdk: &aws_config::SdkConfig, cluster: impl Into<String>) -> Result<Self, EksError> {
        let credentials =
            sdk.credentials_provider().ok_or_else(|| EksError::Credentials("no credentials provider".into()))?;
        let region = sdk.region().map(|r| r.to_string()).ok_or_else(|| EksError::Credentials("no region".into()))?;
        Ok(Self {
            eks: aws_sdk_eks::Client::new(sdk),
            credentials,
            region,
            cluster: cluster.into(),
            cached: Mutex::new(None),
        })
    }

    /// A client whose token is valid for at least another minute.
    pub async fn client(&self) -> Result<kube::Client, EksError> {
        if let Some((c, at)) = self.cached.lock().unwrap_or_else(|e| e.into_inner()).as_ref()
            && at.elapsed() + Duration::from_secs(60) < TOKEN_REUSE
        {
            return Ok(c.clone());
        }
        let info = describe(&self.eks, &self.cluster).await?;
        let creds = self.credentials.provide_credentials().await.map_err(|e| EksError::Credentials(e.to_string()))?;
        let t = token(&creds, &self.region, &self.cluster, SystemTime::now())?;
        let mut config = kube_config(&info, &t).await?;
        config.connect_timeout = Some(Duration::from_secs(5));
        config.read_timeout = Some(Duration::from_secs(30));
        let client = kube::Client::try_from(config).map_err(|e| EksError::Config(e.to_string()))?;
        *self.cached.lock().unwrap_or_else(|e| e.into_inner()) = Some((client.clone(), Instant::now()));
        Ok(client)
    }
}
