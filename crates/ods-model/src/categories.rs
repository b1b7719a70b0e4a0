//! Closed categorical values of a notification, each with the stable code used in the JSON
//! contract, in Avro and in the analytics store.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A code that is not one of the allowed values of a category.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{value}' is not a valid {category}; allowed: {allowed}")]
pub struct UnknownCode {
    /// The category, e.g. `sex`.
    pub category: &'static str,
    /// The offending value.
    pub value: String,
    /// The allowed values, comma separated.
    pub allowed: String,
}

macro_rules! category {
    (
        $(#[$meta:meta])*
        $name:ident, $label:literal, { $( $(#[$vmeta:meta])* $variant:ident => $code:literal ),+ $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name {
            $( $(#[$vmeta])* #[serde(rename = $code)] $variant ),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[ $( $name::$variant ),+ ];
            /// The category's name as used in error messages and field names.
            pub const CATEGORY: &'static str = $label;

            /// The stable code of this value (JSON contract, Avro, store).
            pub fn code(self) -> &'static str {
                match self { $( $name::$variant => $code ),+ }
            }

            /// Parses a stable code.
            pub fn parse(code: &str) -> Result<Self, UnknownCode> {
                match code {
                    $( $code => Ok($name::$variant), )+
                    other => Err(UnknownCode {
                        category: $label,
                        value: other.to_string(),
                        allowed: Self::allowed(),
                    }),
                }
            }

            /// The allowed codes, comma separated, for messages.
            pub fn allowed() -> String {
                Self::ALL.iter().map(|v| v.code()).collect::<Vec<_>>().join(", ")
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.code())
            }
        }

        impl std::str::FromStr for $name {
            type Err = UnknownCode;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }
    };
}

category!(
    /// Sex of the worker as registered: male, female, or other/unknown.
    Sex, "sex", {
        /// Male.
        Male => "M",
        /// Female.
        Female => "F",
        /// Other or not registered.
        Other => "X",
    }
);

category!(
    /// The most serious consequence of the disease for the worker.
    Consequence, "consequence", {
        /// No work incapacity.
        None => "none",
        /// Temporary (partial) work incapacity.
        Temporary => "temporary",
        /// Permanent (partial) work incapacity.
        Permanent => "permanent",
        /// The worker died of the disease.
        Death => "death",
    }
);

category!(
    /// Duration of sickness absence caused by the disease.
    AbsenceBand, "absence_band", {
        /// Less than one month.
        LessThanOneMonth => "lt1m",
        /// One to three months.
        OneToThreeMonths => "1to3m",
        /// Three to six months.
        ThreeToSixMonths => "3to6m",
        /// More than six months.
        MoreThanSixMonths => "gt6m",
        /// Not (yet) known.
        Unknown => "unknown",
    }
);

impl AbsenceBand {
    /// The Avro enum symbol of this band (Avro symbols may not start with a digit).
    pub fn avro_symbol(self) -> &'static str {
        match self {
            AbsenceBand::LessThanOneMonth => "lt1m",
            AbsenceBand::OneToThreeMonths => "m1to3",
            AbsenceBand::ThreeToSixMonths => "m3to6",
            AbsenceBand::MoreThanSixMonths => "gt6m",
            AbsenceBand::Unknown => "unknown",
        }
    }

    /// Parses an Avro enum symbol produced by [`AbsenceBand::avro_symbol`].
    pub fn from_avro_symbol(symbol: &str) -> Result<Self, UnknownCode> {
        Self::ALL
            .iter()
            .copied()
            .find(|band| band.avro_symbol() == symbol)
            .ok_or_else(|| UnknownCode {
                category: "absence_band (avro)",
                value: symbol.to_string(),
                allowed: "lt1m, m1to3, m3to6, gt6m, unknown".to_string(),
            })
    }
}

category!(
    /// How the disease came to the doctor's attention.
    DetectionRoute, "detection_route", {
        /// Sickness-absence guidance (verzuimbegeleiding), ~87% of notifications.
        AbsenceGuidance => "absence_guidance",
        /// The worker's own consultation (open spreekuur), ~10%.
        Consultation => "consultation",
        /// Periodic occupational health examination (PMO/PAGO), ~3%.
        PmoPago => "pmo_pago",
    }
);

category!(
    /// A type of prevention advice the doctor gave. An empty list means no advice was given.
    PreventionAdvice, "prevention_advice", {
        /// Treatment or referral for treatment.
        Treatment => "treatment",
        /// Organisational measures (work organisation, workload).
        Organisational => "organisational",
        /// Behavioural measures (instruction, training).
        Behavioural => "behavioural",
        /// Further medical examination.
        FurtherMedical => "further_medical",
        /// A survey of the workplace.
        WorkplaceSurvey => "workplace_survey",
        /// Personal protective equipment.
        PersonalProtectiveEquipment => "ppe",
        /// Technical measures at the source.
        Technical => "technical",
    }
);

category!(
    /// Why a doctor withdraws a notification. Free text is deliberately not recorded.
    WithdrawalReason, "reason", {
        /// The case was already notified.
        Duplicate => "duplicate",
        /// On reflection the disease is not predominantly caused by work.
        NotOccupational => "not_occupational",
        /// The notification was filed by mistake.
        EnteredInError => "entered_in_error",
        /// Any other reason.
        Other => "other",
    }
);

category!(
    /// Five- to ten-year age band of the worker at diagnosis, as published.
    AgeBand, "age_band", {
        /// Younger than 25.
        Under25 => "lt25",
        /// 25 to 34.
        From25To34 => "25-34",
        /// 35 to 44.
        From35To44 => "35-44",
        /// 45 to 54.
        From45To54 => "45-54",
        /// 55 to 64.
        From55To64 => "55-64",
        /// 65 and older.
        From65 => "65plus",
    }
);

impl AgeBand {
    /// The band of a worker born in `birth_year` at a diagnosis in `diagnosis_year`
    /// (age = difference of the years, the registry's convention when only a birth year is known).
    pub fn from_years(birth_year: i32, diagnosis_year: i32) -> Self {
        match diagnosis_year - birth_year {
            i32::MIN..=24 => AgeBand::Under25,
            25..=34 => AgeBand::From25To34,
            35..=44 => AgeBand::From35To44,
            45..=54 => AgeBand::From45To54,
            55..=64 => AgeBand::From55To64,
            _ => AgeBand::From65,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for band in AbsenceBand::ALL {
            assert_eq!(AbsenceBand::parse(band.code()), Ok(*band));
            assert_eq!(AbsenceBand::from_avro_symbol(band.avro_symbol()), Ok(*band));
        }
        for route in DetectionRoute::ALL {
            assert_eq!(route.code().parse::<DetectionRoute>(), Ok(*route));
        }
    }

    #[test]
    fn unknown_code_names_the_allowed_values() {
        let err = Sex::parse("male").unwrap_err();
        assert_eq!(err.category, "sex");
        assert_eq!(err.allowed, "M, F, X");
    }

    #[test]
    fn age_bands_cover_boundaries() {
        assert_eq!(AgeBand::from_years(2000, 2024), AgeBand::Under25);
        assert_eq!(AgeBand::from_years(1999, 2024), AgeBand::From25To34);
        assert_eq!(AgeBand::from_years(1960, 2024), AgeBand::From55To64);
        assert_eq!(AgeBand::from_years(1959, 2024), AgeBand::From65);
    }

    #[test]
    fn serde_uses_the_contract_codes() {
        let json = serde_json::to_string(&AbsenceBand::OneToThreeMonths).unwrap();
        assert_eq!(json, "\"1to3m\"");
        let back: Consequence = serde_json::from_str("\"permanent\"").unwrap();
        assert_eq!(back, Consequence::Permanent);
    }
}
