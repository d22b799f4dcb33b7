export {
  describeSettings,
  intSetting,
  isSettingsError,
  loadSettings,
  logLevelSetting,
  portSetting,
  type SettingSources,
  type SettingSpec,
  SettingsError,
  type SettingValues,
  setting,
  stringSetting,
} from "./settings.js";
