//! No two modules of hlynr-rl import each other, directly or around a loop.

#[test]
fn the_modules_of_hlynr_rl_have_no_import_cycles() {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = hlynr_testkit::modules::import_graph(&src);
    assert!(graph.contains_key("trainer") && graph["trainer"].contains("algorithm"));
    let cycles = hlynr_testkit::modules::cycles(&graph);
    assert!(
        cycles.is_empty(),
        "modules that import each other: {cycles:?}"
    );
}
