//! Rules as the engine runs them.

/// One `SecRule` or `SecAction` (a chain's later links in `chained`).
#[derive(Debug, Default)]
pub struct Rule {
    pub id: u64,
    /// 1–5; rampart runs 1 (request head) and 2 (request body); 3–5
    /// (response, logging) are kept and not run.
    pub phase: u8,
    pub targets: Vec<Target>,
    pub operator: Operator,
    pub transforms: Vec<Transform>,
    /// Which distinct transformation list this is (for the per-request
    /// cache of transformed values); set when the rules are loaded.
    pub chain_id: u32,
    pub msg: String,
    pub logdata: String,
    pub tags: Vec<String>,
    pub severity: Option<String>,
    pub disruptive: Option<Disruptive>,
    pub status: Option<u16>,
    pub setvars: Vec<SetVar>,
    pub skip_after: Option<String>,
    pub ctls: Vec<Ctl>,
    pub chain: bool,
    /// `nolog`: a match is not reported (ModSecurity's error log leaves
    /// it out; so do rampart's `matched` lists).
    pub nolog: bool,
    pub capture: bool,
    pub multi_match: bool,
    /// The rules chained after this one, in order.
    pub chained: Vec<Rule>,
    /// Switched off by `SecRuleRemoveById` / `ByTag` / `ByMsg`.
    pub removed: bool,
    /// Some of `targets` are exclusions (`!VAR:x`); set at load.
    pub has_exclude: bool,
}

/// A variable of a rule, with its selection.
#[derive(Debug, Default, Clone)]
pub struct Target {
    pub collection: Collection,
    pub selector: Option<Selector>,
    /// `!VAR:x`: leaves `x` out of the rule's `VAR`.
    pub exclude: bool,
    /// `&VAR`: how many values it has.
    pub count: bool,
}

/// Which member(s) of a collection.
#[derive(Debug, Clone)]
pub enum Selector {
    /// By name, lower-cased (names compare without case).
    Name(String),
    Regex(regex::Regex),
}

/// The variable stores `setvar` writes: TX, and IP and GLOBAL (which
/// `initcol` opens; in rampart they hold for one request).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    Tx,
    Ip,
    Global,
}

impl Store {
    pub fn parse(name: &str) -> Option<Store> {
        match name.to_ascii_lowercase().as_str() {
            "tx" => Some(Store::Tx),
            "ip" => Some(Store::Ip),
            "global" => Some(Store::Global),
            _ => None,
        }
    }

    /// As `parse`, without allocating.
    pub fn parse_ref(name: &str) -> Option<Store> {
        if name.eq_ignore_ascii_case("tx") {
            Some(Store::Tx)
        } else if name.eq_ignore_ascii_case("ip") {
            Some(Store::Ip)
        } else if name.eq_ignore_ascii_case("global") {
            Some(Store::Global)
        } else {
            None
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

macro_rules! collections {
    ($($variant:ident = $name:literal,)*) => {
        /// The variables rampart's WAF reads.
        #[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
        pub enum Collection {
            #[default]
            $($variant,)*
        }

        impl Collection {
            pub fn parse(name: &str) -> Option<Collection> {
                $(if name.eq_ignore_ascii_case($name) { return Some(Collection::$variant); })*
                None
            }

            /// Its name as rules and logs write it.
            pub fn name(self) -> &'static str {
                match self {
                    $(Collection::$variant => $name,)*
                }
            }
        }
    };
}

collections! {
    Args = "ARGS",
    ArgsNames = "ARGS_NAMES",
    ArgsGet = "ARGS_GET",
    ArgsGetNames = "ARGS_GET_NAMES",
    ArgsPost = "ARGS_POST",
    ArgsPostNames = "ARGS_POST_NAMES",
    ArgsCombinedSize = "ARGS_COMBINED_SIZE",
    QueryString = "QUERY_STRING",
    RequestUri = "REQUEST_URI",
    RequestUriRaw = "REQUEST_URI_RAW",
    RequestFilename = "REQUEST_FILENAME",
    RequestBasename = "REQUEST_BASENAME",
    RequestLine = "REQUEST_LINE",
    RequestMethod = "REQUEST_METHOD",
    RequestProtocol = "REQUEST_PROTOCOL",
    RequestHeaders = "REQUEST_HEADERS",
    RequestHeadersNames = "REQUEST_HEADERS_NAMES",
    RequestCookies = "REQUEST_COOKIES",
    RequestCookiesNames = "REQUEST_COOKIES_NAMES",
    RequestBody = "REQUEST_BODY",
    RequestBodyLength = "REQUEST_BODY_LENGTH",
    ReqbodyProcessor = "REQBODY_PROCESSOR",
    ReqbodyError = "REQBODY_ERROR",
    ReqbodyErrorMsg = "REQBODY_ERROR_MSG",
    InboundDataError = "INBOUND_DATA_ERROR",
    Files = "FILES",
    FilesNames = "FILES_NAMES",
    FilesSizes = "FILES_SIZES",
    FilesCombinedSize = "FILES_COMBINED_SIZE",
    MultipartPartHeaders = "MULTIPART_PART_HEADERS",
    MultipartStrictError = "MULTIPART_STRICT_ERROR",
    MultipartUnmatchedBoundary = "MULTIPART_UNMATCHED_BOUNDARY",
    MultipartFilename = "MULTIPART_FILENAME",
    MultipartName = "MULTIPART_NAME",
    Xml = "XML",
    RemoteAddr = "REMOTE_ADDR",
    UniqueId = "UNIQUE_ID",
    Duration = "DURATION",
    Geo = "GEO",
    Tx = "TX",
    Ip = "IP",
    Global = "GLOBAL",
    MatchedVar = "MATCHED_VAR",
    MatchedVarName = "MATCHED_VAR_NAME",
    MatchedVars = "MATCHED_VARS",
    MatchedVarsNames = "MATCHED_VARS_NAMES",
    ResponseBody = "RESPONSE_BODY",
    ResponseStatus = "RESPONSE_STATUS",
    ResponseProtocol = "RESPONSE_PROTOCOL",
    ResponseHeaders = "RESPONSE_HEADERS",
    ResponseHeadersNames = "RESPONSE_HEADERS_NAMES",
    ResponseContentType = "RESPONSE_CONTENT_TYPE",
    ResponseContentLength = "RESPONSE_CONTENT_LENGTH",
}

/// A rule's test.
#[derive(Debug)]
pub struct Operator {
    pub kind: OperatorKind,
    pub negated: bool,
}

impl Default for Operator {
    fn default() -> Self {
        Operator {
            kind: OperatorKind::Unconditional,
            negated: false,
        }
    }
}

#[derive(Debug)]
pub enum OperatorKind {
    Rx(regex::bytes::Regex),
    /// A pattern only a backtracking engine runs (look-around,
    /// back-references), matched over the value read as UTF-8.
    RxFancy(Box<fancy_regex::Regex>),
    /// Phrases, matched without case.
    Pm(phrases::Phrases),
    /// Text that may hold `%{...}` macros, expanded when the rule runs.
    StrEq(String),
    Contains(String),
    ContainsWord(String),
    BeginsWith(String),
    EndsWith(String),
    Within(String),
    Eq(String),
    Ge(String),
    Gt(String),
    Le(String),
    Lt(String),
    IpMatch(Vec<ipnet::IpNet>),
    /// Allowed bytes.
    ValidateByteRange(Box<[bool; 256]>),
    ValidateUrlEncoding,
    ValidateUtf8Encoding,
    DetectSqli,
    DetectXss,
    /// An operator rampart parses and does not evaluate (`@rbl`, which
    /// would ask DNS on the request path; `@geoLookup`, which needs a
    /// GeoIP database): it never matches, and loading says so.
    NotEvaluated(&'static str),
    Unconditional,
    NoMatch,
}

impl OperatorKind {
    /// The parameter, for operators whose parameter may hold macros.
    pub fn text(&self) -> Option<&str> {
        match self {
            OperatorKind::StrEq(p)
            | OperatorKind::Contains(p)
            | OperatorKind::ContainsWord(p)
            | OperatorKind::BeginsWith(p)
            | OperatorKind::EndsWith(p)
            | OperatorKind::Within(p)
            | OperatorKind::Eq(p)
            | OperatorKind::Ge(p)
            | OperatorKind::Gt(p)
            | OperatorKind::Le(p)
            | OperatorKind::Lt(p) => Some(p),
            _ => None,
        }
    }
}

/// Phrase lists (`@pm`): one automaton, matched without case.
pub mod phrases {
    #[derive(Debug)]
    pub struct Phrases(pub aho_corasick::AhoCorasick);

    impl Phrases {
        pub fn new(words: Vec<Vec<u8>>) -> Result<Phrases, String> {
            aho_corasick::AhoCorasick::builder()
                .ascii_case_insensitive(true)
                .build(words.into_iter().filter(|w| !w.is_empty()))
                .map(Phrases)
                .map_err(|e| format!("@pm: {e}"))
        }

        /// The first phrase found in `hay`, as it appears there.
        pub fn find<'h>(&self, hay: &'h [u8]) -> Option<&'h [u8]> {
            self.0.find(hay).map(|m| &hay[m.start()..m.end()])
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transform {
    None,
    Lowercase,
    Uppercase,
    UrlDecode,
    UrlDecodeUni,
    RemoveNulls,
    ReplaceNulls,
    RemoveWhitespace,
    CompressWhitespace,
    Trim,
    TrimLeft,
    TrimRight,
    Length,
    HtmlEntityDecode,
    NormalisePath,
    NormalisePathWin,
    HexDecode,
    HexEncode,
    Base64Decode,
    Utf8ToUnicode,
    JsDecode,
    CssDecode,
    CmdLine,
    ReplaceComments,
    Sha1,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disruptive {
    Pass,
    Deny,
    /// What `SecDefaultAction` says (in anomaly scoring: pass).
    Block,
    /// Stop inspecting; the request goes on.
    Allow,
}

/// A variable `setvar` names: its store and (macro-holding) name.
#[derive(Debug, Clone)]
pub struct VarName {
    pub store: Store,
    pub name: String,
}

#[derive(Debug, Clone)]
pub enum SetVar {
    Set(VarName, String),
    Add(VarName, String),
    Sub(VarName, String),
    Delete(VarName),
}

/// One parsed action.
#[derive(Debug)]
pub enum Action {
    Id(u64),
    Phase(u8),
    Msg(String),
    LogData(String),
    Tag(String),
    Severity(String),
    Transform(Transform),
    Chain,
    /// `log` (false) or `nolog` (true).
    NoLog(bool),
    Capture,
    MultiMatch,
    Disruptive(Disruptive),
    Status(u16),
    SetVar(SetVar),
    SkipAfter(String),
    Ctl(Ctl),
    Ignored,
}

/// `ctl:`: a change to this request's rules, made when the rule matches.
#[derive(Debug, Clone)]
pub enum Ctl {
    /// `ruleRemoveById=N` (or a range).
    RemoveById(u64, u64),
    RemoveByTag(String),
    /// `ruleRemoveTargetById=N;VAR:sel`: the rule no longer reads VAR:sel.
    RemoveTargetById(u64, u64, Target),
    RemoveTargetByTag(String, Target),
    /// `ruleEngine=On|Off|DetectionOnly`.
    Engine(EngineMode),
    /// `requestBodyProcessor=URLENCODED|MULTIPART|JSON|XML`.
    BodyProcessor(BodyProcessor),
    /// `requestBodyAccess=On|Off`.
    BodyAccess(bool),
    /// `forceRequestBodyVariable=On|Off`: REQUEST_BODY holds the body
    /// whatever processor read it.
    ForceBodyVariable(bool),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineMode {
    On,
    Off,
    DetectionOnly,
}

/// How a request body is read into variables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyProcessor {
    UrlEncoded,
    Multipart,
    Json,
    Xml,
}

impl BodyProcessor {
    pub fn parse(s: &str) -> Option<BodyProcessor> {
        Some(match s.to_ascii_uppercase().as_str() {
            "URLENCODED" => BodyProcessor::UrlEncoded,
            "MULTIPART" => BodyProcessor::Multipart,
            "JSON" => BodyProcessor::Json,
            "XML" => BodyProcessor::Xml,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            BodyProcessor::UrlEncoded => "URLENCODED",
            BodyProcessor::Multipart => "MULTIPART",
            BodyProcessor::Json => "JSON",
            BodyProcessor::Xml => "XML",
        }
    }
}
