//! Mutual TLS between nodes: a `warden node` process and this process, both with
//! certificates of a throwaway CA, run a remote child over TLS; a node without TLS cannot
//! join them.

#![cfg(feature = "cluster")]

#[path = "support/nodes.rs"]
mod nodes;

use nodes::{COOKIE, NodeProc, WAIT};
use ractor::ActorRef;
use warden_cluster::{ECHO_KIND, EchoArgs, EchoMsg, Node, Placement, RemoteChild, Tls, locate};
use warden_supervisor::Supervisor;

const NAME: &str = "warden-cluster";

/// A CA, and one certificate for every node (issued for NAME): PEM files in `dir`.
fn certificates(dir: &std::path::Path) -> [std::path::PathBuf; 3] {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let node_key = rcgen::KeyPair::generate().unwrap();
    let node = rcgen::CertificateParams::new(vec![NAME.to_string()])
        .unwrap()
        .signed_by(&node_key, &ca, &ca_key)
        .unwrap();
    let paths = [dir.join("node.pem"), dir.join("node.key"), dir.join("ca.pem")];
    std::fs::write(&paths[0], node.pem()).unwrap();
    std::fs::write(&paths[1], node_key.serialize_pem()).unwrap();
    std::fs::write(&paths[2], ca.pem()).unwrap();
    paths
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_speak_mutual_tls_and_a_plain_node_cannot_join() {
    let dir = tempfile::tempdir().unwrap();
    let [cert, key, ca] = certificates(dir.path());
    let tls_args: Vec<String> = [
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
        "--tls-ca",
        ca.to_str().unwrap(),
        "--tls-name",
        NAME,
    ]
    .map(String::from)
    .to_vec();
    let a = NodeProc::start_with("a", COOKIE, &[], &tls_args).await;
    let read = |p: &std::path::Path| std::fs::read(p).unwrap();
    let tls = Tls::from_pem(&read(&cert), &read(&key), &read(&ca), NAME).unwrap();
    let origin = Node::builder("origin")
        .cookie(COOKIE)
        .tls(tls)
        .seed(a.addr)
        .start()
        .await
        .unwrap();
    origin.wait_for(&["a"], WAIT).await.unwrap();

    let echo = RemoteChild::new(&origin, ECHO_KIND, &EchoArgs { tag: "e".into() })
        .unwrap()
        .placement(Placement::Pinned("a".into()))
        .spec("echo");
    let root = Supervisor::builder("root").child(echo).spawn().await.unwrap();
    let cell = root.which_children().await.unwrap()[0].state.actor().unwrap().clone();
    let remote = ActorRef::<EchoMsg>::from(locate(&origin, &cell, WAIT).await.unwrap().actor);
    assert_eq!(
        ractor::call_t!(remote, EchoMsg::Ping, 5_000, "over tls".to_string()).unwrap(),
        "e@a: over tls"
    );

    // A node without TLS (the cookie is right) gets nowhere.
    let plain = NodeProc::start("plain", COOKIE, &[a.addr]).await;
    plain
        .wait_line(
            |l| l == "rejected a" || l.starts_with("rejected "),
            "the plain node refused",
        )
        .await;
    assert!(!a.lines().iter().any(|l| l.starts_with("up plain")), "{:#?}", a.lines());

    root.stop().await;
    origin.stop().await;
}
