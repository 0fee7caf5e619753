//! The browser game: the arena's rules in JavaScript on a canvas page
//! (`web/arena.html`), its prey played by a learner over WebSocket
//! (`docs/remote.md`). The page is served by the learner it talks to, with
//! the run's settings written into it.

use crate::config::ArenaConfig;

const PAGE: &str = include_str!("../web/arena.html");
const PLACEHOLDER: &str = "/*ARENA_CONFIG*/{}";

/// The page for a game of `config` (self-contained: nothing is fetched).
pub fn page(config: &ArenaConfig) -> String {
    let mut settings = serde_json::to_value(config).unwrap_or_default();
    // The tick limit travels outside the settings (env.max_episode_steps).
    settings["max_ticks"] = config.max_ticks.into();
    PAGE.replace(PLACEHOLDER, &settings.to_string())
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
        let page = page(&config);
        assert!(!page.contains(PLACEHOLDER));
        let at = page.find("const C = ").unwrap() + "const C = ".len();
        let line = &page[at..at + page[at..].find(";\n").unwrap()];
        let settings: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(settings["ticks_per_action"], 3);
        assert_eq!(settings["max_ticks"], 1234);
        assert_eq!(settings["reward"]["death"], -20.0);
        assert!(!page.contains("src=\"http"), "nothing is fetched");
    }
}
