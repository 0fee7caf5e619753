//! The browser game: the arena's rules in JavaScript on a canvas page
//! (`web/arena.html`), its prey played by a live learner over WebSocket
//! (`docs/remote.md`) or by a trained policy behind `hlynr serve`
//! (`POST /v1/act`). The page is served by whoever plays it, with the run's
//! settings written into it.

use crate::config::ArenaConfig;

const PAGE: &str = include_str!("../web/arena.html");
const PLACEHOLDER: &str = "/*ARENA_CONFIG*/{}";
const DRIVER_PLACEHOLDER: &str = "/*DRIVER*/\"learner\"";

/// Who plays the page's prey.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Driver {
    /// The learner that serves the page, over the WebSocket at `/`: every
    /// decision is a transition it trains on.
    Learner,
    /// A trained policy behind `hlynr serve`, asked through
    /// `POST /v1/act` (deterministic actions).
    Served,
}

/// The page for a game of `config` played by `driver` (self-contained:
/// nothing is fetched but the actions).
pub fn page(config: &ArenaConfig, driver: Driver) -> String {
    let mut settings = serde_json::to_value(config).unwrap_or_default();
    // The tick limit travels outside the settings (env.max_episode_steps).
    settings["max_ticks"] = config.max_ticks.into();
    let driver = match driver {
        Driver::Learner => "\"learner\"",
        Driver::Served => "\"served\"",
    };
    PAGE.replace(PLACEHOLDER, &settings.to_string())
        .replace(DRIVER_PLACEHOLDER, driver)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_carries_the_runs_settings() {
        let config = ArenaConfig {
            ticks_per_action: 3,
            max_ticks: 1234,
            ..ArenaConfig::default()
        };
        let page = page(&config, Driver::Learner);
        assert!(!page.contains(PLACEHOLDER));
        assert!(page.contains("const DRIVER = \"learner\";"));
        let served = super::page(&config, Driver::Served);
        assert!(served.contains("const DRIVER = \"served\";"));
        let at = page.find("const C = ").unwrap() + "const C = ".len();
        let line = &page[at..at + page[at..].find(";\n").unwrap()];
        let settings: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(settings["ticks_per_action"], 3);
        assert_eq!(settings["max_ticks"], 1234);
        assert_eq!(settings["reward"]["death"], -20.0);
        assert!(!page.contains("src=\"http"), "nothing is fetched");
    }
}
