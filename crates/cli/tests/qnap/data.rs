//! The example data of document 001 (QNAP "Log and Event", rendered): the 57 system-log
//! lines of its CSV export and the 20 events of its event example, verbatim, plus
//! four earlier container events implied by its log, so that the record ids come out
//! as the document shows them (logs 1..=57, the example events 62..=81).

/// The CSV lines of the document's export example, in order, header first.
pub const EXPORT_LINES: &[&str] = &[
    "Date,Level,Category,User,Message",
    r#"2015-05-19 08:03:53.173968,INFO,container,Anonymous,Create a new redmine application: test"#,
    r#"2015-05-19 08:03:54.900782,INFO,container,Anonymous,"Destroy container (lxc, ctest)""#,
    r#"2015-05-19 08:03:54.982283,INFO,container,Anonymous,"Start to do background task (create, ctest)""#,
    r#"2015-05-19 08:03:55.044036,INFO,container,Anonymous,"Stop container (docker, b1d73c45086f, dtest)""#,
    r#"2015-05-19 08:03:55.074089,INFO,container,Anonymous,"Destroy container (docker, b1d73c45086f, dtest)""#,
    r#"2015-05-19 08:03:55.334810,INFO,backup,Anonymous,Add backup target testsite (127.0.0.1:5000)"#,
    r#"2015-05-19 08:03:55.761119,INFO,backup,Anonymous,Update backup target testsite (127.0.0.1:5000)"#,
    r#"2015-05-19 08:03:55.817075,INFO,backup,Anonymous,Remove backup target testsite (127.0.0.1:5000)"#,
    r#"2015-05-19 08:03:56.498284,INFO,container,Anonymous,"Destroy container (lxc, utest)""#,
    r#"2015-05-19 08:03:56.932014,INFO,backup,system,"Start to backup container (lxc, utest)""#,
    r#"2015-05-19 08:03:56.946959,INFO,backup,system,"Finished backup container (lxc, utest)""#,
    r#"2015-05-19 08:03:57.273933,INFO,backup,system,"Start to restore container (lxc, utest)""#,
    r#"2015-05-19 08:03:57.286040,ERROR,backup,system,"Backup error: [[Errno 2] No such file or directory: '/home/vagrant/container-station-web/ctstation/../tmp/tmpbyr9kv/metadata'] (lxc, utest)""#,
    r#"2015-05-19 08:03:57.296792,INFO,backup,system,"Finished restore container (lxc, utest)""#,
    r#"2015-05-19 08:03:57.645748,INFO,backup,system,"Start to backup container (lxc, utest)""#,
    r#"2015-05-19 08:03:57.655533,INFO,backup,system,"Finished backup container (lxc, utest)""#,
    r#"2015-05-19 08:04:07.866309,INFO,container,Anonymous,"Create container (lxc, ctest)""#,
    r#"2015-05-19 08:04:08.234364,INFO,container,Anonymous,"Finished background task (create, ctest)""#,
    r#"2015-05-19 08:04:08.249760,INFO,container,Anonymous,"Start to do background task (create, dtest)""#,
    r#"2015-05-19 08:04:08.533218,INFO,container,Anonymous,"Create container (docker, 4a3633b8730d, dtest)""#,
    r#"2015-05-19 08:04:08.546143,INFO,container,Anonymous,"Finished background task (create, dtest)""#,
    r#"2015-05-19 08:04:59.874611,INFO,image,Anonymous,"Start to download image from qnap (lxc, ubuntu-trusty:latest)""#,
    r#"2015-05-19 08:04:59.887517,WARN,image,Anonymous,"Download: ubuntu-trusty:latest (qnap, lxc, ubuntu-trusty:latest)""#,
    r#"2015-05-19 08:05:01.280748,INFO,container,Anonymous,"Create container (lxc, utest)""#,
    r#"2015-05-19 08:05:04.995096,INFO,container,Anonymous,"Stop container (lxc, utest)""#,
    r#"2015-05-19 08:05:05.220879,INFO,container,Anonymous,"Destroy container (lxc, utest)""#,
    r#"2015-05-19 08:05:06.461266,INFO,container,Anonymous,"Create container (lxc, utest)""#,
    r#"2015-05-19 08:05:06.866338,INFO,container,Anonymous,"Stop container (docker, e0360e6fe8ee, DockerTestAPI)""#,
    r#"2015-05-19 08:05:06.897210,INFO,container,Anonymous,"Destroy container (docker, e0360e6fe8ee, DockerTestAPI)""#,
    r#"2015-05-19 08:05:07.184924,INFO,container,Anonymous,"Create container (docker, 1753ab55c36e, DockerTestAPI)""#,
    r#"2015-05-19 08:05:07.543961,INFO,container,Anonymous,"Create container (docker, 11abb7a227d7, DockerTestAPI2)""#,
    r#"2015-05-19 08:05:08.875218,INFO,container,Anonymous,"Stop container (lxc, utest)""#,
    r#"2015-05-19 08:05:09.418246,INFO,container,Anonymous,"Start container (lxc, utest)""#,
    r#"2015-05-19 08:05:09.470956,INFO,container,Anonymous,"Stop container (docker, 1753ab55c36e, DockerTestAPI)""#,
    r#"2015-05-19 08:05:09.625173,INFO,container,Anonymous,"Start container (docker, 1753ab55c36e, DockerTestAPI)""#,
    r#"2015-05-19 08:05:10.830863,INFO,container,Anonymous,"Restart container (lxc, utest)""#,
    r#"2015-05-19 08:05:11.057968,INFO,container,Anonymous,"Restart container (docker, 1753ab55c36e, DockerTestAPI)""#,
    r#"2015-05-19 08:05:16.311245,INFO,container,Anonymous,"Stop container (lxc, utest)""#,
    r#"2015-05-19 08:05:16.366120,INFO,container,Anonymous,"Stop container (docker, 1753ab55c36e, DockerTestAPI)""#,
    r#"2015-05-19 08:05:16.586827,INFO,container,Anonymous,"Destroy container (lxc, utest)""#,
    r#"2015-05-19 08:05:16.685231,INFO,container,Anonymous,"Stop container (docker, 11abb7a227d7, DockerTestAPI2)""#,
    r#"2015-05-19 08:05:16.720875,INFO,container,Anonymous,"Destroy container (docker, 11abb7a227d7, DockerTestAPI2)""#,
    r#"2015-05-19 08:05:19.574727,INFO,image,Anonymous,"Start to download image from dockerhub (docker, lgsd/diamond:latest)""#,
    r#"2015-05-19 08:05:20.946651,INFO,container,Anonymous,"Create container (lxc, utest)""#,
    r#"2015-05-19 08:05:21.437004,INFO,export,Anonymous,"Start to export container (lxc, utest) to /test/c.tgz""#,
    r#"2015-05-19 08:05:26.583202,INFO,export,Anonymous,Export task logs are cleared"#,
    r#"2015-05-19 08:05:30.354270,INFO,export,Anonymous,"Finished export container (lxc, utest) to /test/c.tgz""#,
    r#"2015-05-19 08:05:30.360105,INFO,export,Anonymous,"Start to export container (docker, 1753ab55c36e, DockerTestAPI) to /test/d.tgz""#,
    r#"2015-05-19 08:05:37.481961,INFO,image,Anonymous,"Finished to download image from dockerhub (docker, lgsd/diamond:latest)""#,
    r#"2015-05-19 08:05:39.794424,INFO,export,Anonymous,"Finished export container (docker, 1753ab55c36e, DockerTestAPI) to /test/d.tgz""#,
    r#"2015-05-19 08:05:40.050190,INFO,container,Anonymous,"Destroy container (lxc, utest_import)""#,
    r#"2015-05-19 08:05:43.138930,INFO,import,Anonymous,"Start to import container (lxc, utest_import) from /test/c.tgz""#,
    r#"2015-05-19 08:05:43.538430,INFO,import,Anonymous,Import task logs are cleared"#,
    r#"2015-05-19 08:05:44.279709,INFO,system,Anonymous,Create a new folder at /home/vagrant/container-station-web/test/new_folder"#,
    r#"2015-05-19 08:05:44.856886,INFO,container,TestUser1,Hello container station"#,
    r#"2015-05-19 08:05:44.863714,WARN,container,TestUser2,Hello container station"#,
    r#"2015-05-19 08:05:44.869210,ERROR,container,TestUser3,Hello container station"#,
];

/// Events written before the example's 20 (ids 58..=61), as the log implies them.
pub const EARLIER_EVENTS: &[&str] = &[
    r#"container:all:1432022706:{"container": "utest", "state": "create", "type": "lxc"}"#,
    r#"container:all:1432022707:{"container": "DockerTestAPI", "state": "create", "type": "docker", "id": "1753ab55c36e99195042ddc875e59d4f877f1c140d25196ad34a5bece9f1cf3a"}"#,
    r#"container:all:1432022707:{"container": "DockerTestAPI2", "state": "create", "type": "docker", "id": "11abb7a227d7c6001e8bb5f6418f284845123e6dc56ef95309e6d3881d51f3a4"}"#,
    r#"container:all:1432022709:{"container": "utest", "state": "start", "type": "lxc"}"#,
];

/// The document's `GET /api/v1/event` example messages, newest first.
pub const EXAMPLE_EVENTS: &[&str] = &[
    r#"import:Anonymous:1432022743:{"tid": 1, "path": "/test/c.tgz", "state": "running", "type": "lxc", "cid": "utest_import"}"#,
    r#"container:all:1432022740:{"container": "utest_import", "state": "destroy", "type": "lxc"}"#,
    r#"export:Anonymous:1432022739:{"container": "DockerTestAPI", "cid": "1753ab55c36e99195042ddc875e59d4f877f1c140d25196ad34a5bece9f1cf3a", "compress": true, "state": "completed", "result": 0, "tid": 2, "path": "/test/d.tgz", "type": "docker"}"#,
    r#"image:Anonymous:1432022737:{"name": "lgsd/diamond", "repository": "dockerhub", "state": "success", "tag": "latest", "action": "download", "type": "docker"}"#,
    r#"image:all:1432022737:{"action": "update", "category": "local", "state": "pull", "type": "docker", "id": "lgsd/diamond:latest"}"#,
    r#"export:Anonymous:1432022730:{"container": "DockerTestAPI", "cid": "1753ab55c36e99195042ddc875e59d4f877f1c140d25196ad34a5bece9f1cf3a", "compress": true, "state": "running", "tid": 2, "path": "/test/d.tgz", "type": "docker"}"#,
    r#"export:Anonymous:1432022730:{"container": "utest", "cid": "utest", "compress": true, "state": "completed", "result": 0, "tid": 1, "path": "/test/c.tgz", "type": "lxc"}"#,
    r#"container:all:1432022726:{"container": "utest", "type": "lxc", "port": "add"}"#,
    r#"container:all:1432022721:{"container": "utest", "state": "start", "type": "lxc"}"#,
    r#"export:Anonymous:1432022721:{"container": "utest", "cid": "utest", "compress": true, "state": "running", "tid": 1, "path": "/test/c.tgz", "type": "lxc"}"#,
    r#"container:all:1432022721:{"container": "utest", "state": "create", "type": "lxc"}"#,
    r#"image:Anonymous:1432022719:{"action": "delete", "state": "error", "type": "docker", "name": "lgsd/diamond"}"#,
    r#"container:all:1432022716:{"container": "DockerTestAPI2", "state": "destroy", "type": "docker", "id": "11abb7a227d7c6001e8bb5f6418f284845123e6dc56ef95309e6d3881d51f3a4"}"#,
    r#"container:all:1432022716:{"container": "DockerTestAPI2", "state": "die", "type": "docker", "id": "11abb7a227d7c6001e8bb5f6418f284845123e6dc56ef95309e6d3881d51f3a4"}"#,
    r#"container:all:1432022716:{"container": "utest", "state": "destroy", "type": "lxc"}"#,
    r#"container:all:1432022716:{"container": "utest", "state": "stop", "type": "lxc"}"#,
    r#"container:all:1432022714:{"container": "utest", "type": "lxc", "port": "add"}"#,
    r#"container:all:1432022711:{"container": "DockerTestAPI", "state": "die", "type": "docker", "id": "1753ab55c36e99195042ddc875e59d4f877f1c140d25196ad34a5bece9f1cf3a"}"#,
    r#"container:all:1432022711:{"container": "DockerTestAPI", "state": "restart", "type": "docker", "id": "1753ab55c36e99195042ddc875e59d4f877f1c140d25196ad34a5bece9f1cf3a"}"#,
    r#"container:all:1432022711:{"container": "DockerTestAPI", "state": "start", "type": "docker", "id": "1753ab55c36e99195042ddc875e59d4f877f1c140d25196ad34a5bece9f1cf3a"}"#,
];

use serde_json::{json, Value};

/// One CSV line of the export split into its five cells (only the message is ever
/// quoted in the document, and it holds no quote characters).
pub fn cells(line: &str) -> [String; 5] {
    let mut parts = line.splitn(5, ',');
    let mut next = || parts.next().expect("five cells").to_string();
    let (date, level, category, user, message) = (next(), next(), next(), next(), next());
    let message = message
        .strip_prefix('"')
        .and_then(|m| m.strip_suffix('"'))
        .map(str::to_string)
        .unwrap_or(message);
    [date, level, category, user, message]
}

/// A native log record for one export line.
pub fn log_record(line: &str) -> Value {
    let [date, level, category, user, message] = cells(line);
    json!({"kind": "log", "ts": format!("{}Z", date.replace(' ', "T")), "level": level,
        "category": category, "user": user, "message": message})
}

/// A native event record for one `category:user:ts:JSON` message; the payload keeps
/// its key order.
pub fn event_record(message: &str) -> Value {
    let mut parts = message.splitn(4, ':');
    let mut next = || parts.next().expect("four fields");
    let (category, user, ts, data) = (next(), next(), next(), next());
    let data: Value = serde_json::from_str(data).expect("JSON payload");
    json!({"kind": "event", "ts": ts.parse::<i64>().expect("epoch"), "category": category,
        "user": user, "data": data})
}

/// Every seed record in id order: logs 1..=57, events 58..=81.
pub fn seed_records() -> Value {
    let logs = EXPORT_LINES[1..].iter().map(|l| log_record(l));
    let earlier = EARLIER_EVENTS.iter().map(|m| event_record(m));
    let example = EXAMPLE_EVENTS.iter().rev().map(|m| event_record(m));
    Value::Array(logs.chain(earlier).chain(example).collect())
}

/// What the platform reported about `utest` besides its state (the wait example).
pub fn utest_attributes() -> Value {
    json!({"name": "utest", "attributes": {"image": "ubuntu-trusty:latest",
        "ipaddress": ["10.0.3.47"], "memory": 11751424, "cpu": 0.0, "rx": 0, "tx": 0}})
}
