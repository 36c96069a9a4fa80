//! The Eureka data model (`InstanceInfo`, `Application`, `Applications`), free of any wire format.

use indexmap::IndexMap;
use std::collections::BTreeMap;

/// `dataCenterInfo.@class` of a non-AWS instance; Spring, py and js clients all send this one.
pub const DEFAULT_DATA_CENTER_CLASS: &str =
    "com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo";
/// `dataCenterInfo.@class` of an AWS instance.
pub const AMAZON_DATA_CENTER_CLASS: &str = "com.netflix.appinfo.AmazonInfo";
/// Client renewal interval when the client sends no `leaseInfo` (`LeaseInfo.DEFAULT_LEASE_RENEWAL_INTERVAL`), seconds.
pub const DEFAULT_RENEWAL_INTERVAL_SECS: u32 = 30;
/// Lease duration when the client sends no `leaseInfo` (`LeaseInfo.DEFAULT_LEASE_DURATION`), seconds.
pub const DEFAULT_DURATION_SECS: u32 = 90;

/// `InstanceInfo.InstanceStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Status {
    /// Ready to receive traffic.
    Up,
    /// Health check failed.
    Down,
    /// Still initialising.
    Starting,
    /// Deliberately taken out of traffic (usually an override).
    OutOfService,
    /// Unknown; also the "no override" value of `overriddenStatus`.
    #[default]
    Unknown,
}

impl Status {
    /// The wire name (`UP`, `OUT_OF_SERVICE`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Up => "UP",
            Status::Down => "DOWN",
            Status::Starting => "STARTING",
            Status::OutOfService => "OUT_OF_SERVICE",
            Status::Unknown => "UNKNOWN",
        }
    }

    /// Lenient parse like `InstanceStatus.toEnum`: unknown strings become `UNKNOWN`.
    pub fn from_wire(s: &str) -> Status {
        Status::parse(s).unwrap_or(Status::Unknown)
    }

    /// Strict parse like `InstanceStatus.valueOf` (used for `?value=` on status overrides).
    pub fn parse(s: &str) -> Option<Status> {
        match s.trim().to_ascii_uppercase().as_str() {
            "UP" => Some(Status::Up),
            "DOWN" => Some(Status::Down),
            "STARTING" => Some(Status::Starting),
            "OUT_OF_SERVICE" => Some(Status::OutOfService),
            "UNKNOWN" => Some(Status::Unknown),
            _ => None,
        }
    }
}

/// `InstanceInfo.ActionType`: what happened to an instance, as seen by delta fetches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActionType {
    /// Registered (or re-registered).
    Added,
    /// Status or data changed.
    Modified,
    /// Cancelled or evicted.
    Deleted,
}

impl ActionType {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ActionType::Added => "ADDED",
            ActionType::Modified => "MODIFIED",
            ActionType::Deleted => "DELETED",
        }
    }

    /// Parses a wire name; `None` for anything else.
    pub fn parse(s: &str) -> Option<ActionType> {
        match s {
            "ADDED" => Some(ActionType::Added),
            "MODIFIED" => Some(ActionType::Modified),
            "DELETED" => Some(ActionType::Deleted),
            _ => None,
        }
    }
}

/// A port with its `@enabled` flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Port {
    /// Port number.
    pub port: u16,
    /// Whether clients may use it.
    pub enabled: bool,
}

/// `dataCenterInfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataCenter {
    /// The Java type id (`@class` in JSON, `class=` in XML).
    pub class: String,
    /// `MyOwn`, `Netflix` or `Amazon`.
    pub name: String,
    /// AWS metadata (only for `Amazon`).
    pub metadata: Option<IndexMap<String, String>>,
}

impl Default for DataCenter {
    fn default() -> Self {
        Self {
            class: DEFAULT_DATA_CENTER_CLASS.to_owned(),
            name: "MyOwn".to_owned(),
            metadata: None,
        }
    }
}

/// `leaseInfo`: the two client settings plus the server-filled timestamps (epoch ms).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseInfo {
    /// How often the client says it renews, seconds.
    pub renewal_interval_secs: u32,
    /// How long the lease lasts without renewal, seconds.
    pub duration_secs: u32,
    /// When the lease was created.
    pub registration_timestamp: u64,
    /// When it was last renewed.
    pub last_renewal_timestamp: u64,
    /// When it was cancelled or evicted (0 while alive).
    pub eviction_timestamp: u64,
    /// When the instance first went UP under this lease (0 if never).
    pub service_up_timestamp: u64,
}

impl Default for LeaseInfo {
    fn default() -> Self {
        Self {
            renewal_interval_secs: DEFAULT_RENEWAL_INTERVAL_SECS,
            duration_secs: DEFAULT_DURATION_SECS,
            registration_timestamp: 0,
            last_renewal_timestamp: 0,
            eviction_timestamp: 0,
            service_up_timestamp: 0,
        }
    }
}

/// One `InstanceInfo`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Instance {
    /// `instanceId` as sent (None when the client sent none; js-client sends none).
    pub instance_id: Option<String>,
    /// `hostName`.
    pub host_name: String,
    /// `app`, upper-cased.
    pub app: String,
    /// `ipAddr`.
    pub ip_addr: String,
    /// `sid` (written only when not `na`/`unknown`).
    pub sid: Option<String>,
    /// `status`.
    pub status: Status,
    /// `overriddenStatus` / `overriddenstatus`.
    pub overridden_status: Status,
    /// `port`.
    pub port: Port,
    /// `securePort`.
    pub secure_port: Port,
    /// `countryId`.
    pub country_id: i32,
    /// `dataCenterInfo` (required on register).
    pub data_center: Option<DataCenter>,
    /// `leaseInfo`.
    pub lease: Option<LeaseInfo>,
    /// `metadata`, in the order received.
    pub metadata: IndexMap<String, String>,
    /// `appGroupName`.
    pub app_group_name: Option<String>,
    /// `homePageUrl`.
    pub home_page_url: Option<String>,
    /// `statusPageUrl`.
    pub status_page_url: Option<String>,
    /// `healthCheckUrl`.
    pub health_check_url: Option<String>,
    /// `secureHealthCheckUrl`.
    pub secure_health_check_url: Option<String>,
    /// `vipAddress` (may be a comma-separated list).
    pub vip_address: Option<String>,
    /// `secureVipAddress` (may be a comma-separated list).
    pub secure_vip_address: Option<String>,
    /// `isCoordinatingDiscoveryServer`.
    pub is_coordinating_discovery_server: bool,
    /// `lastUpdatedTimestamp`, epoch ms.
    pub last_updated_timestamp: u64,
    /// `lastDirtyTimestamp`, epoch ms: when the client last changed this info.
    pub last_dirty_timestamp: u64,
    /// `actionType`.
    pub action_type: Option<ActionType>,
    /// `asgName`.
    pub asg_name: Option<String>,
}

impl Instance {
    /// The registry key, like `InstanceInfo.getId()`: `instanceId` if set, else the AWS instance id
    /// for `Amazon` data centers, else `hostName`.
    pub fn id(&self) -> &str {
        if let Some(id) = self.instance_id.as_deref().filter(|s| !s.is_empty()) {
            return id;
        }
        if let Some(dc) = &self.data_center
            && dc.name == "Amazon"
            && let Some(id) = dc
                .metadata
                .as_ref()
                .and_then(|m| m.get("instance-id"))
                .filter(|s| !s.is_empty())
        {
            return id;
        }
        &self.host_name
    }

    /// Whether `vip` is one of this instance's comma-separated VIP addresses.
    pub fn has_vip(&self, vip: &str) -> bool {
        has_address(self.vip_address.as_deref(), vip)
    }

    /// Whether `svip` is one of this instance's comma-separated secure VIP addresses.
    pub fn has_secure_vip(&self, svip: &str) -> bool {
        has_address(self.secure_vip_address.as_deref(), svip)
    }
}

fn has_address(list: Option<&str>, wanted: &str) -> bool {
    list.is_some_and(|l| l.split(',').any(|a| a == wanted))
}

/// One `Application`: a name and its instances.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Application {
    /// Upper-cased app name.
    pub name: String,
    /// Its instances.
    pub instances: Vec<Instance>,
}

/// `Applications`: what `GET apps`, `apps/delta`, `vips/…` return.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Applications {
    /// `versions__delta`.
    pub version: u64,
    /// `apps__hashcode`.
    pub hashcode: String,
    /// The applications.
    pub applications: Vec<Application>,
}

/// `Applications.getReconcileHashCode()`: per status with a non-zero count, in status-name order,
/// `NAME_count_`; e.g. `DOWN_1_UP_3_`. Clients compare it with their own to detect drift.
pub fn reconcile_hashcode<'a>(instances: impl IntoIterator<Item = &'a Instance>) -> String {
    let mut counts: BTreeMap<&'static str, usize> = BTreeMap::new();
    for i in instances {
        *counts.entry(i.status.as_str()).or_default() += 1;
    }
    counts
        .into_iter()
        .map(|(status, n)| format!("{status}_{n}_"))
        .collect()
}

impl Applications {
    /// Builds an `Applications` and computes its hash from its own instances.
    pub fn new(version: u64, applications: Vec<Application>) -> Self {
        let hashcode = reconcile_hashcode(applications.iter().flat_map(|a| a.instances.iter()));
        Self {
            version,
            hashcode,
            applications,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_status(status: Status) -> Instance {
        Instance {
            status,
            ..Instance::default()
        }
    }

    #[test]
    fn hashcode_is_sorted_by_status_name() {
        let all = [
            with_status(Status::Up),
            with_status(Status::Down),
            with_status(Status::Up),
            with_status(Status::Up),
        ];
        assert_eq!(reconcile_hashcode(&all), "DOWN_1_UP_3_");
        assert_eq!(reconcile_hashcode(&[]), "");
        let oos = [
            with_status(Status::OutOfService),
            with_status(Status::Starting),
        ];
        assert_eq!(reconcile_hashcode(&oos), "OUT_OF_SERVICE_1_STARTING_1_");
    }

    #[test]
    fn id_falls_back_to_host_name() {
        let mut i = Instance {
            host_name: "h".into(),
            ..Instance::default()
        };
        assert_eq!(i.id(), "h");
        i.instance_id = Some(String::new());
        assert_eq!(i.id(), "h");
        i.instance_id = Some("x".into());
        assert_eq!(i.id(), "x");
    }

    #[test]
    fn vip_lists_split_on_commas() {
        let i = Instance {
            vip_address: Some("a,b".into()),
            ..Instance::default()
        };
        assert!(i.has_vip("b"));
        assert!(!i.has_vip("a,b"));
        assert!(!i.has_secure_vip("a"));
    }
}
